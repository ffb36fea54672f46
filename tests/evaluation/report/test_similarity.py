import numpy as np
import torch

from medgan.evaluation.report.similarity import memorisation, ncc_matrix, near_duplicates
from medgan.evaluation.report.volumes import network
from tests.evaluation.report.heads import head_ct


def _stack(volumes: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack([network(v, "ct") for v in volumes])[:, None])


def test_ncc_is_one_for_a_copy_up_to_brightness_and_contrast() -> None:
    volume = _stack([head_ct(0)])
    assert np.allclose(ncc_matrix(volume, 2 * volume + 0.1), 1.0)


def test_an_exact_and_a_slightly_noised_copy_of_a_training_case_are_flagged_as_memorised() -> None:
    training = _stack([head_ct(i) for i in range(8)])
    held_out = _stack([head_ct(100 + i) for i in range(6)])
    noised = training[3] + 0.01 * torch.randn(training[3].shape, generator=torch.Generator().manual_seed(0))
    synthetic = torch.stack([training[1], noised, *_stack([head_ct(200 + i) for i in range(4)])])
    result = memorisation(synthetic, training, held_out)
    assert result["flagged"] == [0, 1]
    assert result["nearest_training"][:2] == [1, 3]
    assert result["share_flagged"] == 2 / 6


def test_near_duplicate_samples_are_found_and_distinct_ones_are_not() -> None:
    real = _stack([head_ct(i) for i in range(6)])
    distinct = _stack([head_ct(50 + i) for i in range(6)])
    assert near_duplicates(distinct, real, floor=0.98)["share_flagged"] == 0.0
    collapsed = torch.cat([distinct[:4], distinct[:1] + 0.001, distinct[1:2]])
    result = near_duplicates(collapsed, real, floor=0.98)
    assert result["share_flagged"] == 4 / 6  # samples 0, 4 (a copy of 0), 1 and 5 (a copy of 1)
    assert {(a, b) for a, b, _ in result["pairs"]} == {(0, 4), (1, 5)}


def test_an_enriched_case_is_not_memorised_from_its_own_source_head() -> None:
    training = _stack([head_ct(i) for i in range(6)])
    held_out = _stack([head_ct(100 + i) for i in range(4)])
    lesioned = training[2].clone()
    lesioned[:, 10:13, 10:13, 10:13] += 0.2  # the source head plus a lesion: what enrich writes
    names = [f"subject_{i}" for i in range(6)]
    plain = memorisation(torch.stack([lesioned]), training, held_out)
    assert plain["flagged"] == [0]  # without knowing its source it looks memorised ...
    aware = memorisation(torch.stack([lesioned]), training, held_out, sources=["subject_2"], training_names=names)
    assert aware["flagged"] == [] and aware["compared_without_own_source"] == 1  # ... it is its source by design
    twins = torch.stack([lesioned, lesioned + 0.001])
    assert near_duplicates(twins, held_out, floor=0.98)["share_flagged"] == 1.0
    assert near_duplicates(twins, held_out, floor=0.98, sources=["subject_2", "subject_2"])["share_flagged"] == 0.0
