"""``medgan report``'s checks: realism, intensity, diversity, memorisation and artifacts of a
synthetic set against real scans, each a :class:`~medgan.evaluation.report.checks.Check` with a
pass / warn / fail verdict, its value and the threshold it was judged by."""
