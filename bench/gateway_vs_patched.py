"""`ocr:` search through the gateway in front of a stock Immich vs the patched server, on one library; JSON.

Usage: python -m bench.gateway_vs_patched --source UPSTREAM [--immich-version v3.1.0] [--assets 10000,100000]
       [--queries 30] [--rounds 3]

One PostgreSQL, Redis and ml_service. The patched server of the release opens the library first; the e2e
photos are uploaded and processed by its own jobs (OCR and CLIP through ml_service), then the library is
grown to each size of `--assets` by cloning their rows (synthetic OCR text on the clones). At each size the
patched server answers the `ocr:` queries, then it is stopped and the stock server of the same release is
started on the same database with `immich-aio gateway` in front, which answers the same queries. Figures:
per size and side, p50/p95 latency over `--rounds` passes of the queries, one client at a time, and whether
every query's ranked list of asset ids (first page, 100) is the same on both sides.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.search_load import clone_library
from e2e import build, checks, clip_weights, services
from e2e.immich_api import ImmichClient
from e2e.observe import Library
from e2e.ports import PortAllocator
from e2e.report import Report
from e2e.supervisor import Supervisor
from ml_service.models.clip.names import DEFAULT_CN_CLIP_MODEL, UPSTREAM_ALIAS_MODEL
from patcher.node import cache_root
from testsupport.synthetic import WORDS


def built_tree(version: str, source: str, cache: Path, logs: Path, *, patched: bool) -> Path:
    tree = build.prepare_tree(version, source, cache, patched=patched, fresh=False, log_dir=logs)
    build.build_tree(tree, cache, logs, web=False)
    return tree


def ranked(client: ImmichClient, words: list[str], rounds: int) -> tuple[dict[str, list[str]], list[float]]:
    """Each word's `ocr:` result ids (first page of 100) and every request's seconds."""
    answers: dict[str, list[str]] = {}
    seconds: list[float] = []
    for _ in range(rounds):
        for word in words:
            started = time.perf_counter()
            items = client.smart_search(f"ocr:{word}", size=100)
            seconds.append(time.perf_counter() - started)
            answers[word] = [str(item["id"]) for item in items]
    return answers, seconds


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
    patched = built_tree(args.immich_version, args.source, args.cache, logs, patched=True)
    stock = built_tree(args.immich_version, args.source, args.cache, logs, patched=False)
    node = build.find_toolchain(patched).node
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

        def serve(tree: Path, front: services.Front) -> str:
            server = services.start_immich(
                supervisor, ports, support, tree, node, build.build_data_dir(tree, work / f"data-{tree.name}")
            )
            return services.start_front(supervisor, ports, front, server, support.database_url, cli, work)

        def stop(*names: str) -> None:
            for name in names:
                supervisor.stop(name)

        url = serve(patched, "none")
        library = Library(ImmichClient(url), support.database_url, supervisor, support.ml_url)
        checks.set_up_admin(library, support.ml_url, DEFAULT_CN_CLIP_MODEL)
        checks.upload_all(library, work / "images", Report(work / "report"))
        library.wait_processed(list(library.assets.values()))
        library.client.close()
        for size in sizes:
            if supervisor.processes.get("immich") is None or not supervisor.get("immich").is_running():
                url = serve(patched, "none")
            clone_library(support.database_url, size)
            client = ImmichClient(url)
            client.login(checks.ADMIN_EMAIL, checks.ADMIN_PASSWORD)
            patched_answers, patched_seconds = ranked(client, words, args.rounds)
            client.close()
            stop("immich")
            url_gateway = serve(stock, "gateway")
            client = ImmichClient(url_gateway)
            client.login(checks.ADMIN_EMAIL, checks.ADMIN_PASSWORD)
            gateway_answers, gateway_seconds = ranked(client, words, args.rounds)
            client.close()
            stop("gateway", "immich")
            differing = [word for word in words if patched_answers[word] != gateway_answers[word]]
            results.append(
                {
                    "assets": size,
                    "queries": len(words),
                    "patched": figures(patched_seconds),
                    "gateway": figures(gateway_seconds),
                    "p50_ratio": round(
                        statistics.median(gateway_seconds) / statistics.median(patched_seconds), 2
                    ),
                    "rankings_equal": len(words) - len(differing),
                    "rankings_differing": differing,
                    "results_per_query_mean": round(
                        statistics.mean(len(ids) for ids in patched_answers.values()), 1
                    ),
                }
            )
            print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    print(json.dumps({"immich_version": args.immich_version, "sizes": results}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
