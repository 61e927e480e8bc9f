"""The database and gateway benchmarks of bench/ run to their end with their smallest parameters.

As tests/ml/test_bench_smoke.py does for the ML side: each runs as its users run it (`python -m bench.NAME`,
its own throwaway PostgreSQL cluster, offline) on a tiny library, and the test checks that it finished and
printed its report's shape, never its figures.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from tests.ml.test_bench_smoke import ML_PREFIXES, run_bench

BENCH = Path(__file__).resolve().parents[2] / "bench"
# Benchmarks that need an Immich server built from its source and a full end-to-end stack (e2e/): no
# tiny form of them exists without that build, which the e2e suite itself exercises.
NEEDS_IMMICH_BUILD = {"search_load", "gateway_vs_patched"}

pytestmark = pytest.mark.slow


def last_document(output: str) -> dict[str, Any]:
    """The last JSON object a benchmark printed (on one line or indented over several)."""
    starts = [
        index
        for index, char in enumerate(output)
        if char == "{" and (index == 0 or output[index - 1] == "\n")
    ]
    for start in reversed(starts):
        try:
            document = json.loads(output[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(document, dict):
            return document
    raise AssertionError(f"no JSON report at the end of:\n{output[-2000:]}")


SMOKE_RUNS = {"db_latency", "db_leftover_cost", "db_near_quality", "db_quality", "db_script_quality"}
SMOKE_RUNS |= {"gateway_overhead"}


def test_every_other_benchmark_has_a_smoke_run() -> None:
    others = {path.stem for path in BENCH.glob("*.py") if not path.stem.startswith((*ML_PREFIXES, "__"))}
    assert others == SMOKE_RUNS | NEEDS_IMMICH_BUILD, "a new bench/ module needs a smoke run here"


def test_db_latency_runs_small() -> None:
    report = last_document(run_bench("db_latency", "--assets", "200", "--queries", "5", "--repeats", "1"))
    assert report["benchmark"] == "db_latency" and len(report["results"]) == 1


def test_db_leftover_cost_runs_small() -> None:
    assert last_document(run_bench("db_leftover_cost", "--assets", "100", "--rounds", "1"))


def test_db_near_quality_runs_small(tmp_path: Path) -> None:
    args = ("--per-class", "1", "--queries", "2", "--ocr-cache", str(tmp_path / "ocr.json"))
    assert last_document(run_bench("db_near_quality", *args))


def test_db_quality_runs_small() -> None:
    assert last_document(run_bench("db_quality", "--images", "4"))["benchmark"] == "db_quality"


def test_db_script_quality_runs_small() -> None:
    report = last_document(run_bench("db_script_quality", "--images", "3", "--traditional", "3"))
    assert report["benchmark"] == "db_script_quality"


def test_gateway_overhead_runs_small() -> None:
    assert last_document(run_bench("gateway_overhead", "--requests", "10", "--assets", "50"))
