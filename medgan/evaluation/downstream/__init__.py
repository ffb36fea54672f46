"""The downstream study: does synthetic data make a lesion classifier / detector better?

``cases`` picks each run's training cases (real cases per seed, synthetic cases never made from
a held-out subject, the negative control's lesion-free counterparts), ``grid`` lists the runs
and their seeds, ``runs`` trains and scores one run, ``summary`` turns the runs into intervals,
paired differences and verdicts. The job that drives them is ``pipelines/downstream.py``.
"""
