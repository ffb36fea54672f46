import numpy as np

from medgan.evaluation.lesion_realism import seam_score
from medgan.evaluation.report.artifacts import blob_response, checkerboard_peak, outside_body_share
from tests.evaluation.report.heads import head_ct


def test_a_checkerboard_pattern_stands_out_in_the_spectrum() -> None:
    head = head_ct(0)
    smooth = checkerboard_peak(head)
    pattern = 30.0 * (np.indices(head.shape).sum(axis=0) % 2)  # what a stride-2 transposed convolution leaves
    assert smooth < 10
    assert checkerboard_peak(head + pattern) > 20 * smooth
    stripes = 30.0 * (np.arange(head.shape[2]) % 2)  # 2x upsampling along one axis only
    assert checkerboard_peak(head + stripes[None, None, :]) > 10 * smooth
    coarse = 100.0 * (np.arange(head.shape[2]) // 2 % 2)  # period 4: a 4x grid (where anatomy has more power)
    assert checkerboard_peak(head + coarse[None, None, :]) > 10 * smooth


def test_content_in_the_air_is_measured_outside_the_body() -> None:
    head = head_ct(0)
    body = head > -500
    assert outside_body_share(head, body, -500.0) == 0.0
    ghost = head.copy()
    ghost[:3, :3, :3] = 100.0  # a blob in a corner
    assert outside_body_share(ghost, body, -500.0) > 0.001


def test_a_lesion_like_blob_outside_the_mask_raises_the_blob_response() -> None:
    head = head_ct(0)
    body = head > -500
    grid = np.indices(head.shape)
    blob = ((grid - np.array([12, 12, 8])[:, None, None, None]) ** 2).sum(axis=0) <= 4
    mask = ((grid - np.array([12, 12, 16])[:, None, None, None]) ** 2).sum(axis=0) <= 4
    net = head / 2000.0
    with_lesion = net.copy()
    with_lesion[mask] += 0.2
    clean = blob_response(with_lesion, body, sigma=1.2, exclude=mask)
    with_blob = with_lesion.copy()
    with_blob[blob] += 0.2
    assert blob_response(with_blob, body, sigma=1.2, exclude=mask) > 3 * clean


def test_a_pasted_lesion_has_a_higher_seam_score_than_a_blended_one() -> None:
    from scipy import ndimage

    head = head_ct(0)
    grid = np.indices(head.shape)
    mask = ((grid - 12) ** 2).sum(axis=0) <= 9
    pasted = head.copy()
    pasted[mask] = 300.0
    weight = ndimage.gaussian_filter(mask.astype(float), 1.5)
    blended = head * (1 - weight) + 300.0 * weight
    assert seam_score(pasted, mask) > 1.5 * seam_score(blended, mask)
