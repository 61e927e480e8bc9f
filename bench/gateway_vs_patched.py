"""`ocr:` search through the gateway in front of a stock Immich vs the patched server, on one library; JSON.

Usage: python -m bench.gateway_vs_patched --source UPSTREAM [--immich-version v3.1.0] [--assets 10000,100000]
       [--queries 30] [--rounds 3]

One PostgreSQL, Redis and ml_service. The patched server of the release opens the library first; the e2e
photos are uploaded and processed by its own jobs (OCR and CLIP through ml_service), then the library is
grown to each size of `--assets` by cloning their rows (synthetic OCR text on the clones). At each size the
patched server answers the `ocr:` queries, then it is stopped and the stock server of the same release is
started on the same database with `immich-aio gateway` in front, which answers the same queries. Figures:
per size and side, p50/p95 latency over `--rounds` passes of the queries, one client at a time, and whether
every query's ranked list of asset ids (first page, 100) is the same on both sides; the p50 of each phase of
the gateway's answers (its Server-Timing header); and, as the floor of a read-back through Immich before
v3.2, the stock server's own OCR filter search for the same words.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.search_load import clone_library
from e2e import build, checks, clip_weights, services
from e2e.immich_api import ImmichClient
from e2e.observe import Library
from e2e.ports import PortAllocator
from e2e.report import Report
from e2e.supervisor import Supervisor
from gateway import timing
from ml_service.models.clip.names import DEFAULT_CN_CLIP_MODEL, UPSTREAM_ALIAS_MODEL
from patcher.node import cache_root
from testsupport.synthetic import WORDS


def built_tree(version: str, source: str, cache: Path, logs: Path, *, patched: bool) -> Path:
    tree = build.prepare_tree(version, source, cache, patched=patched, fresh=False, log_dir=logs)
    build.build_tree(tree, cache, logs, web=False)
    return tree


@dataclass
class Side:
    """One side's answers: each word's result ids (first page of 100), every request's seconds, and the
    gateway's phases (its Server-Timing header) per request."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    phases: list[dict[str, tuple[float, int | None]]] = field(default_factory=list)
    by_word: dict[str, list[float]] = field(default_factory=dict)


def ranked(client: ImmichClient, words: list[str], rounds: int) -> Side:
    side = Side()
    for _ in range(rounds):
        for word in words:
            started = time.perf_counter()
            response = client.http.post("/search/smart", json={"query": f"ocr:{word}", "size": 100})
            side.seconds.append(time.perf_counter() - started)
            side.by_word.setdefault(word, []).append(side.seconds[-1])
            response.raise_for_status()
            side.answers[word] = [str(item["id"]) for item in response.json()["assets"]["items"]]
            if timing.HEADER in response.headers:
                side.phases.append(timing.parse(response.headers[timing.HEADER]))
    return side


def stock_ocr_filter(client: ImmichClient, words: list[str], rounds: int) -> list[float]:
    """Seconds of the stock server's own OCR search (`POST /search/metadata {"ocr": word, "size": 100}`),
    the filter the gateway's bulk read-back runs before v3.2: what no read-back through it can undercut."""
    seconds: list[float] = []
    for _ in range(rounds):
        for word in words:
            started = time.perf_counter()
            client.metadata_search(size=100, ocr=word)
            seconds.append(time.perf_counter() - started)
    return seconds


def phase_figures(phases: list[dict[str, tuple[float, int | None]]]) -> dict[str, dict[str, float]]:
    """Per phase of the gateway's answers: p50 of its milliseconds (0 where a request had no such phase),
    and the mean count where the phase counts something (assets read back)."""
    names = sorted({name for request in phases for name in request})
    shown: dict[str, dict[str, float]] = {}
    for name in names:
        durations = [request.get(name, (0.0, None))[0] for request in phases]
        counts = [request[name][1] or 0 for request in phases if name in request]
        shown[name] = {"p50_ms": round(statistics.median(durations), 1)}
        if any(request.get(name, (0.0, None))[1] is not None for request in phases):
            shown[name]["mean_count"] = round(sum(counts) / len(phases), 1)
    return shown


def word_p50(side: Side, word: str) -> float:
    return round(1000 * statistics.median(side.by_word[word]), 1)


def figures(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", required=True)
    parser.add_argument("--immich-version", default="v3.1.0")
    parser.add_argument("--assets", default="10000,100000")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=cache_root() / "e2e")
    args = parser.parse_args()
    sizes = [int(size) for size in args.assets.split(",")]
    words = WORDS[: args.queries // 2] + WORDS[-(args.queries - args.queries // 2) :]
    work = Path(tempfile.mkdtemp(prefix="gateway-vs-patched-"))
    logs = work / "logs"
    patched_tree = built_tree(args.immich_version, args.source, args.cache, logs, patched=True)
    stock_tree = built_tree(args.immich_version, args.source, args.cache, logs, patched=False)
    node = build.find_toolchain(patched_tree).node
    weights = args.cache / "cn-clip"
    clip_weights.ensure_random_checkpoint(weights)
    ml_env = {
        "IMMICH_AIO_ML_CLIP_WEIGHTS_DIR": str(weights),
        "IMMICH_AIO_ML_PRELOAD": f"ocr,{DEFAULT_CN_CLIP_MODEL}",
        # the stock server asks for the upstream model name of the same size
        "IMMICH_AIO_ML_CLIP_ALIASES": f"{UPSTREAM_ALIAS_MODEL}={DEFAULT_CN_CLIP_MODEL}",
    }
    results: list[dict[str, Any]] = []
    cli = build.immich_aio_command()
    with Supervisor(logs) as supervisor:
        ports = PortAllocator()
        support = services.start_support(supervisor, ports, work, ml_env, cli)

        def serve(tree: Path, front: services.Front) -> tuple[str, str]:
            """The server's own URL and the URL clients use (the gateway's, where there is one)."""
            server = services.start_immich(
                supervisor, ports, support, tree, node, build.build_data_dir(tree, work / f"data-{tree.name}")
            )
            database = support.database_url
            return server, services.start_front(supervisor, ports, front, server, database, cli, work)

        def stop(*names: str) -> None:
            for name in names:
                supervisor.stop(name)

        url, _ = serve(patched_tree, "none")
        library = Library(ImmichClient(url), support.database_url, supervisor, support.ml_url)
        checks.set_up_admin(library, support.ml_url, DEFAULT_CN_CLIP_MODEL)
        checks.upload_all(library, work / "images", Report(work / "report"))
        library.wait_processed(list(library.assets.values()))
        library.client.close()
        for size in sizes:
            if supervisor.processes.get("immich") is None or not supervisor.get("immich").is_running():
                url, _ = serve(patched_tree, "none")
            clone_library(support.database_url, size)
            client = ImmichClient(url)
            client.login(checks.ADMIN_EMAIL, checks.ADMIN_PASSWORD)
            patched = ranked(client, words, args.rounds)
            client.close()
            stop("immich")
            url_stock, url_gateway = serve(stock_tree, "gateway")
            client = ImmichClient(url_gateway)
            client.login(checks.ADMIN_EMAIL, checks.ADMIN_PASSWORD)
            gateway = ranked(client, words, args.rounds)
            client.close()
            client = ImmichClient(url_stock)
            client.login(checks.ADMIN_EMAIL, checks.ADMIN_PASSWORD)
            stock_filter = stock_ocr_filter(client, words, args.rounds)
            client.close()
            stop("gateway", "immich")
            differing = [word for word in words if patched.answers[word] != gateway.answers[word]]
            results.append(
                {
                    "assets": size,
                    "queries": len(words),
                    "patched": figures(patched.seconds),
                    "gateway": figures(gateway.seconds),
                    "p50_ratio": round(
                        statistics.median(gateway.seconds) / statistics.median(patched.seconds), 2
                    ),
                    "gateway_phases": phase_figures(gateway.phases),
                    "stock_ocr_filter": figures(stock_filter),
                    # each word's p50: [patched, gateway]
                    "per_word_p50_ms": {w: [word_p50(patched, w), word_p50(gateway, w)] for w in words},
                    "rankings_equal": len(words) - len(differing),
                    "rankings_differing": differing,
                    "results_per_query_mean": round(
                        statistics.mean(len(ids) for ids in patched.answers.values()), 1
                    ),
                }
            )
            print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    print(json.dumps({"immich_version": args.immich_version, "sizes": results}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
