"""`medgan report` end to end on small constructed sets where the answer is known, and its page
in a real headless browser (Debian's chromium + chromedriver through selenium; `make test`
installs them when missing, see the Makefile's `browser` target)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage

from medgan.config.report import ReportConfig
from pipelines.cli import cli
from pipelines.report import run_report
from tests.evaluation.report.heads import head_ct, write_ct
from tests.pipelines.test_cli import assert_one_line_error, run_medgan_process

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
browser = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="chromium + chromedriver not installed (`make browser` installs them)"
)
FAST = {"two_sample_steps": 20, "two_sample_edge": 24}


def _lesion(head: np.ndarray, centre: tuple[int, int, int], *, blended: bool) -> tuple[np.ndarray, np.ndarray]:
    grid = np.indices(head.shape)
    mask = ((grid - np.array(centre)[:, None, None, None]) ** 2).sum(axis=0) <= 6
    if blended:
        weight = ndimage.gaussian_filter(mask.astype(float), 1.0)
        return head * (1 - weight) + 250.0 * weight, mask
    pasted = head.copy()
    pasted[mask] = 250.0
    return pasted, mask


def _write_case(folder: Path, head: np.ndarray, mask: np.ndarray | None = None) -> dict[str, str]:
    entry = {"ct": str(write_ct(folder / "ct.nii.gz", head).relative_to(folder.parent))}
    if mask is not None:
        nib.save(
            nib.Nifti1Image(mask.astype(np.uint8), np.diag([4.0, 4.0, 4.0, 1.0])), str(folder / "lesion_mask.nii.gz")
        )
        entry["lesion_mask"] = str((folder / "lesion_mask.nii.gz").relative_to(folder.parent))
    return entry


@pytest.fixture(scope="module")
def real_datalist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real")
    content: dict[str, list[dict[str, object]]] = {"training": [], "test": []}
    for i in range(8):
        content["training"].append({"subject": f"train{i}", **_write_case(root / f"train{i}", head_ct(i))})
    for i in range(8):
        head, mask = _lesion(head_ct(100 + i), (12, 12, 12 + i % 3), blended=True)
        content["test"].append({"subject": f"test{i}", **_write_case(root / f"test{i}", head, mask)})
    (root / "datalist.json").write_text(json.dumps(content))
    return root / "datalist.json"


def _synthetic_set(root: Path, heads: list[tuple[np.ndarray, np.ndarray | None]]) -> Path:
    entries = [
        {"subject": f"syn{i}", "synthetic": True, **_write_case(root / f"syn{i}", head, mask)}
        for i, (head, mask) in enumerate(heads)
    ]
    (root / "datalist.json").write_text(json.dumps({"training": entries}))
    return root


def _verdicts(out: Path) -> dict[str, str]:
    return {check["id"]: check["verdict"] for check in json.loads((out / "report.json").read_text())["checks"]}


@pytest.fixture(scope="module")
def clean_report(real_datalist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clean")
    heads = [_lesion(head_ct(300 + i), (12, 12, 12 + i % 3), blended=True) for i in range(8)]
    synthetic = _synthetic_set(root / "synthetic", heads)
    run_report(ReportConfig(real=real_datalist, synthetic=synthetic, out=root / "report", **FAST), progress=False)
    return root / "report"


def test_a_set_drawn_like_the_real_one_passes_the_checks_a_copy_would_fail(clean_report: Path) -> None:
    verdicts = _verdicts(clean_report)
    for check in (
        "memorisation.nearest_training",
        "diversity.near_duplicates",
        "intensity.hu_range",
        "artifacts.nonfinite",
        "artifacts.checkerboard",
        "artifacts.seam",
        "realism.radiomics_frechet",
    ):
        assert verdicts[check] == "pass", check
    assert verdicts["realism.lesion_frechet"] != "skipped" and verdicts["realism.in_domain_frechet"] != "skipped"
    report = json.loads((clean_report / "report.json").read_text())
    assert report["inputs"]["training (memorisation)"].endswith("(8 scans)")  # the real datalist's training list
    assert report["grid"] == {"spacing_mm": 4.0, "shape": [24, 24, 24]}


def test_copies_artifacts_and_impossible_values_are_flagged(real_datalist: Path, tmp_path: Path) -> None:
    training_head = head_ct(2)
    noised = head_ct(5) + np.random.default_rng(0).normal(0, 5, training_head.shape).astype(np.float32)
    checkerboard = head_ct(301) + 60.0 * (np.indices(training_head.shape).sum(axis=0) % 2)
    out_of_range = head_ct(302)
    out_of_range[head_ct(302) < -900] = -3024.0  # a padding value left in the air
    with_nan = head_ct(303)
    with_nan[0, 0, :10] = np.nan
    heads: list[tuple[np.ndarray, np.ndarray | None]] = [
        (training_head, None),
        (noised, None),
        (checkerboard, None),
        (out_of_range, None),
        (with_nan, None),
    ]
    heads += [_lesion(head_ct(310 + i), (12, 12, 12), blended=False) for i in range(3)]  # pasted, visible seam
    synthetic = _synthetic_set(tmp_path / "synthetic", heads)
    result = run_report(
        ReportConfig(real=real_datalist, synthetic=synthetic, out=tmp_path / "report", **FAST), progress=False
    )
    verdicts = _verdicts(tmp_path / "report")
    assert verdicts["memorisation.nearest_training"] == "fail"
    memorised = next(c for c in result.checks if c.check_id == "memorisation.nearest_training")
    assert set(memorised.details["flagged"]) == {"synthetic:syn0", "synthetic:syn1"}
    assert verdicts["intensity.hu_range"] == "fail"
    assert verdicts["artifacts.nonfinite"] == "fail"
    assert verdicts["artifacts.checkerboard"] in ("warn", "fail")
    checker = next(c for c in result.checks if c.check_id == "artifacts.checkerboard")
    assert checker.details["worst"][0] == "synthetic:syn2"
    assert verdicts["artifacts.seam"] in ("warn", "fail")
    assert result.verdicts["overall"] == "fail"
    assert (tmp_path / "report" / "figures" / "worst_memorisation_nearest_training.png").exists() is False
    assert (tmp_path / "report" / "figures" / "memorisation_pairs.png").exists()


def test_the_html_is_self_contained_and_shows_every_check(clean_report: Path) -> None:
    page = (clean_report / "report.html").read_text()
    report = json.loads((clean_report / "report.json").read_text())
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # nothing loaded from anywhere
    assert "http://" not in page and "https://" not in page
    for check in report["checks"]:
        assert check["id"] in page
    assert page.count("<img ") == len(re.findall(r"data:image/png;base64,", page)) >= 3


def test_translation_and_downstream_results_join_the_report(
    real_datalist: Path, clean_report: Path, tmp_path: Path
) -> None:
    translation = tmp_path / "translated"
    translation.mkdir()
    summary = {"mae_hu": {"mean": 81.5, "ci_low": 70.0, "ci_high": 90.0, "n": 4}}
    (translation / "evaluation.json").write_text(
        json.dumps({"summary": summary, "per_subject": [{"subject": "s1", "mae_hu": 80.0}]})
    )
    shutil.copyfile(clean_report / "figures" / "intensity.png", translation / "evaluation.png")
    study = tmp_path / "study"
    (study / "plots").mkdir(parents=True)
    cell = {
        "task": "classify",
        "condition": "real",
        "n_real": 8,
        "ratio": None,
        "metric": "auc",
        "estimate": 0.7,
        "low": 0.6,
        "high": 0.8,
    }
    (study / "downstream.json").write_text(
        json.dumps({"cells": [cell], "verdicts": [{"text": "no measurable gain: +0.01"}]})
    )
    shutil.copyfile(clean_report / "figures" / "intensity.png", study / "plots" / "classify_sweeps.png")
    synthetic = Path(json.loads((clean_report / "report.json").read_text())["settings"]["synthetic"])
    config = ReportConfig(
        real=real_datalist,
        synthetic=synthetic,
        out=tmp_path / "report",
        translation=translation,
        downstream=study / "downstream.json",
        **FAST,
    )
    run_report(config, progress=False)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "81.5" in page and "no measurable gain: +0.01" in page
    assert (tmp_path / "report" / "figures" / "downstream_classify_sweeps.png").exists()
    assert (tmp_path / "report" / "figures" / "translation.png").exists()


def test_the_cli_writes_the_report_and_refuses_bad_input_without_a_traceback(
    real_datalist: Path, clean_report: Path, tmp_path: Path
) -> None:
    synthetic = json.loads((clean_report / "report.json").read_text())["settings"]["synthetic"]
    runner = CliRunner()
    args = [
        "report",
        "--real",
        str(real_datalist),
        "--synthetic",
        synthetic,
        "--out",
        str(tmp_path / "r"),
        "--quiet",
        "--set",
        "two_sample_steps=10",
        "--set",
        "two_sample_edge=16",
        "--set",
        "thresholds.seam.warn=0.1",
        "--set",
        "thresholds.seam.fail=0.2",
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output and "fail: Lesion seams" in result.output  # the tightened threshold
    missing = run_medgan_process(
        ["report", "--real", str(tmp_path / "nowhere"), "--synthetic", synthetic, "--out", str(tmp_path / "x")],
        tmp_path,
    )
    assert_one_line_error(missing, "the real input does not exist")
    no_out = run_medgan_process(["report", "--real", str(real_datalist), "--synthetic", synthetic], tmp_path)
    assert_one_line_error(no_out, "--out")
    bad_key = run_medgan_process(
        [
            "report",
            "--real",
            str(real_datalist),
            "--synthetic",
            synthetic,
            "--out",
            str(tmp_path / "y"),
            "--set",
            "thresholds.nope.warn=1",
        ],
        tmp_path,
    )
    assert_one_line_error(bad_key, "invalid config")
    assert "unknown key 'thresholds.nope'" in bad_key.stderr


def _driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The flags this machine's closed network needs (no background connections), a fresh profile per run.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,2400",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@browser
def test_report_html_renders_without_console_errors_and_every_image_decodes(clean_report: Path) -> None:
    page = clean_report / "report.html"
    driver = _driver()
    try:
        driver.get(page.resolve().as_uri())
        driver.execute_script("return document.readyState")
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])"
        )
        errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
        title = driver.title
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1200, min(int(height) + 100, 12000))
        shot = clean_report / "screenshot.png"
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    assert title == "medgan report"
    assert errors == []
    assert len(images) >= 3
    undecoded = [alt for alt, complete, width, height in images if not (complete and width > 0 and height > 0)]
    assert undecoded == []
    assert shot.stat().st_size > 10_000
