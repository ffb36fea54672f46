import numpy as np
import pytest
import torch

from medgan.evaluation.report import in_domain, realism
from medgan.evaluation.report.volumes import network
from tests.evaluation.report.heads import head_ct


def _stack(volumes: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack([network(v, "ct") for v in volumes])[:, None])


@pytest.fixture(scope="module")
def space() -> in_domain.FeatureSpace:
    return in_domain.fit_feature_space(_stack([head_ct(i) for i in range(12)]), steps=60, edge=24, seed=0)


def test_the_same_seed_trains_the_same_network(space: in_domain.FeatureSpace) -> None:
    again = in_domain.fit_feature_space(_stack([head_ct(i) for i in range(12)]), steps=60, edge=24, seed=0)
    assert again.sha256 == space.sha256 and len(space.sha256) == 64
    rows = space.features(_stack([head_ct(50), head_ct(51)]), edge=24)
    assert len(rows) == 2 and len(rows[0]) == space.components.shape[0] == 8


def test_features_tell_a_changed_set_from_a_same_distribution_one(space: in_domain.FeatureSpace) -> None:
    real = space.features(_stack([head_ct(100 + i) for i in range(8)]), edge=24)
    same = space.features(_stack([head_ct(200 + i) for i in range(12)]), edge=24)
    changed_heads = [head_ct(300 + i) for i in range(12)]
    for head in changed_heads:
        head[8:16, 8:16, 8:16] += 1000.0  # a bright block no real scan has
    changed = space.features(_stack(changed_heads), edge=24)
    assert realism.permutation_null(realism.normalised_frechet, same, real)["p_value"] > 0.05
    assert realism.permutation_null(realism.feature_mmd, changed, real)["p_value"] < 0.05


def test_too_few_training_scans_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        in_domain.fit_feature_space(_stack([head_ct(0), head_ct(1)]), steps=1)
