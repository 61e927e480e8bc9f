"""Every ML benchmark in bench/ runs to its end with its smallest parameters: a change breaking one fails.

The benchmarks run as their users run them (`python -m bench.NAME …`, offline), on a few images; the tests
check that each finished and printed its report's shape, never its figures (speed is the benchmarks' own
business, measured against a peer in the same run).
"""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bench.ocr_reader import reader
from ml_service.models.ocr import DEFAULT_OCR_MODEL
from testsupport.ocr_corpus import CLASSES

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
# The benchmarks of the ML side; bench/db_* and search_load belong to the database side.
ML_PREFIXES = ("ml_", "ocr_")
# Modules of bench/ that are helpers of other benchmarks, not programs: smoke-tested by a direct call.
HELPERS = {"ocr_reader"}

pytestmark = pytest.mark.slow


def ml_benchmarks() -> set[str]:
    return {path.stem for path in BENCH.glob("*.py") if path.stem.startswith(ML_PREFIXES)}


def run_bench(module: str, *args: str, timeout: float = 900) -> str:
    """`python -m bench.<module> args…` from the repository root: its output, or a failure with its log."""
    python_path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=python_path, HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        pytest.fail(f"bench.{module} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return done.stdout


def last_json(output: str) -> dict[str, Any]:
    """The JSON document a benchmark prints last (some print progress lines before it)."""
    start = output.index("{")
    report: dict[str, Any] = json.loads(output[start:])
    return report


SMOKE_RUNS = {"ml_clip", "ml_ocr", "ml_footprint", "ml_soak", "ocr_levers", "ocr_side_by_side", "ocr_engines"}


def test_every_ml_benchmark_has_a_smoke_run() -> None:
    assert ml_benchmarks() == SMOKE_RUNS | HELPERS, "a new bench/ml_* or ocr_* module needs a smoke run here"


def test_ml_ocr_runs_small() -> None:
    report = last_json(run_bench("ml_ocr", "--images", "2", "--levels", "1"))
    assert report["benchmark"] == "ml_ocr"
    # the plain rapidocr baseline ran on the service's own files (it cannot download here)
    assert set(report["rapidocr_library_call_defaults"]) >= {"images_per_s", "cpu_s_per_image"}
    assert set(report["service"]) == {"concurrency_1"}


def test_ml_clip_runs_small(clip_weights_dir: Path) -> None:
    report = last_json(run_bench("ml_clip", "--repeat", "1", "--weights-dir", str(clip_weights_dir)))
    assert report["benchmark"] == "ml_clip" and report["rounds"] == 1
    assert set(report["speedup_vs_seed"]) == {"onnx", "onnx_int8"}
    # the memory probe (a fresh process loading OCR and both CLIP encoders) reported
    assert "peak_rss_mb" in report["memory"]


def test_ml_footprint_runs_small(clip_weights_dir: Path) -> None:
    output = run_bench(
        "ml_footprint", "--backends", "onnx-int8", "--requests", "1", "--weights-dir", str(clip_weights_dir)
    )
    report = last_json(output)
    (backend,) = report["backends"]
    assert backend["backend"] == "onnx-int8"
    assert {"first_ocr_s", "first_clip_image_s", "first_clip_text_s"} <= set(backend)


def test_ml_soak_runs_small(clip_weights_dir: Path) -> None:
    report = last_json(
        run_bench(
            "ml_soak", "--minutes", "0.05", "--concurrency", "2", "--weights-dir", str(clip_weights_dir)
        )
    )
    # the soak's own pass criteria: every answer 2xx or (for the malformed requests) 4xx, service alive
    assert report["service_alive"] and report["five_xx"] == 0, report["outcomes"]
    assert sum(report["outcomes"].values()) > 0


def test_ocr_levers_runs_small(tmp_path: Path) -> None:
    out = tmp_path / "levers.json"
    run_bench("ocr_levers", "--per-class", "1", "--workers", "1", "--json", str(out))
    report = json.loads(out.read_text())
    assert report["benchmark"] == "ocr_levers" and report["images"] == 8
    assert len(report["rows"]) >= 2 and all("char_accuracy" in row for row in report["rows"])


def test_ocr_side_by_side_runs_small(tmp_path: Path) -> None:
    out = tmp_path / "side.json"
    table = run_bench(
        "ocr_side_by_side", "--no-upstream", "--per-class", "1", "--levels", "1", "--json", str(out)
    )
    report = json.loads(out.read_text())
    ours = report["servers"]["ml_service"]
    assert report["corpus"]["images"] == 8
    assert {"all", *CLASSES} <= set(ours["accuracy"])
    assert set(ours["speed"]) == {"concurrency_1"}
    assert "| images/s, concurrency 1 |" in table


def test_ocr_engines_runs_small(tmp_path: Path) -> None:
    out = tmp_path / "engines.json"
    # faster-paddle is a peer the project never installs: where it is absent, ml_service runs alone
    table = run_bench("ocr_engines", "--per-class", "1", "--levels", "1", "--json", str(out))
    engines = json.loads(out.read_text())["engines"]
    served = {"ml_service PP-OCRv5_mobile", "ml_service PP-OCRv6_tiny", "ml_service PP-OCRv6_small"}
    assert served <= set(engines)
    for name in served:
        assert {"all", *CLASSES} <= set(engines[name]["accuracy"]) and name in table


def test_ocr_reader_reads_a_rendered_line(render: Callable[..., Image.Image]) -> None:
    read = reader(DEFAULT_OCR_MODEL)
    lines = read(render([("增值税电子普通发票", (30, 30))], size=(520, 110)))
    assert [text for _, text, _ in lines] == ["增值税电子普通发票"]
    box, _, score = lines[0]
    assert len(box) == 8 and all(0.0 <= v <= 1.0 for v in box) and 0.0 < score <= 1.0
