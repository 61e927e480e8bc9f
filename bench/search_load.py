"""Search under load through Immich's own API on a patched server holding a large library; prints JSON.

Usage: python -m bench.search_load --source UPSTREAM [--immich-version v3.1.0] [--assets 10000]
       [--concurrency 16] [--minutes 5]

Builds (or reuses) the patched release, starts PostgreSQL, Redis, ml_service and Immich on loopback, uploads
the e2e photos (OCR'd and embedded by Immich's own jobs through ml_service), then grows the library to
`--assets` by cloning those rows in Immich's tables (assets, EXIF, job status, OCR boxes with synthetic
text, CLIP embeddings with noise). `--concurrency` clients then send a bounded mix of plain smart-search
(CLIP + OCR hybrid), `ocr:` and filter-modal OCR queries for `--minutes`; the figures give every error and
the p50/p95 latency per kind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg

from e2e import build, checks, clip_weights, services
from e2e.immich_api import ImmichClient
from e2e.observe import Library
from e2e.ports import PortAllocator
from e2e.report import Report
from e2e.supervisor import Supervisor
from ml_service.models.clip.names import DEFAULT_CN_CLIP_MODEL
from patcher.node import cache_root
from testsupport.immich_schema import tokenize_like_immich
from testsupport.synthetic import WORDS, ocr_line

# Asset columns that must differ per clone (unique) or take their default (generated ids, timestamps).
CLONE_EXPRESSIONS = {
    "id": "c.id",
    "checksum": "decode(md5(c.id::text), 'hex')",
    "originalPath": "t.\"originalPath\" || '.clone-' || c.n",
    "deviceAssetId": "'clone-' || c.n",
    "originalFileName": "'clone-' || c.n || '.jpg'",
}
DEFAULTED = {"updateId", "createdAt", "updatedAt"}


def clone_library(database_url: str, target: int, seed: int = 5) -> int:
    """Grow the library to `target` assets by cloning the processed ones; returns the assets added.

    The connection carries the patched server's application_name, so immich_aio's triggers index the
    cloned OCR boxes exactly as they index the server's own writes.
    """
    rng = random.Random(seed)
    with psycopg.connect(database_url, autocommit=False, application_name="immich-aio") as conn:
        have = conn.execute("SELECT count(*) FROM asset").fetchone()
        missing = target - int(have[0] if have else 0)
        if missing <= 0:
            return 0
        columns = [
            str(row[0])
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'asset' "
                "AND table_schema = 'public' ORDER BY ordinal_position"
            )
            if str(row[0]) not in DEFAULTED
        ]
        conn.execute(
            "CREATE TEMP TABLE clone AS SELECT gen_random_uuid() AS id, n, t.id AS template "
            "FROM generate_series(1, %s) n "
            "JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k, count(*) OVER () AS total "
            "FROM asset) t ON t.k = n %% t.total",
            (missing,),
        )
        names = ", ".join(f'"{c}"' for c in columns)
        values = ", ".join(CLONE_EXPRESSIONS.get(c, f't."{c}"') for c in columns)
        conn.execute(
            f"INSERT INTO asset ({names}) SELECT {values} FROM clone c JOIN asset t ON t.id = c.template"
        )
        for table in ("asset_exif", "asset_job_status", "asset_file"):
            copy_rows(conn, table)
        conn.execute(
            'INSERT INTO smart_search ("assetId", embedding) SELECT c.id, '
            "(SELECT array_agg(v + (random() - 0.5) * 0.2)::vector FROM unnest(s.embedding::real[]) v) "
            'FROM clone c JOIN smart_search s ON s."assetId" = c.template'
        )
        texts = [[ocr_line(rng) for _ in range(rng.randint(1, 4))] for _ in range(2000)]
        conn.execute("CREATE TEMP TABLE clone_text (k integer, line integer, text text)")
        with conn.cursor().copy("COPY clone_text FROM STDIN") as copy:
            for k, lines in enumerate(texts):
                for line, text in enumerate(lines):
                    copy.write_row((k, line, text))
        conn.execute(
            'INSERT INTO asset_ocr ("assetId", x1, y1, x2, y2, x3, y3, x4, y4, "boxScore", "textScore", '
            "text) "
            "SELECT c.id, 0.1, 0.1 + 0.2 * t.line, 0.9, 0.1 + 0.2 * t.line, 0.9, 0.18 + 0.2 * t.line, "
            "0.1, 0.18 + 0.2 * t.line, 0.95, 0.95, t.text "
            "FROM clone c JOIN clone_text t ON t.k = c.n %% %s",
            (len(texts),),
        )
        # as Immich's OCR job writes it: every line's search tokens (CJK bigrams), joined by spaces
        conn.execute("CREATE TEMP TABLE clone_search (k integer, text text)")
        with conn.cursor().copy("COPY clone_search FROM STDIN") as copy:
            for k, lines in enumerate(texts):
                copy.write_row((k, " ".join(token for line in lines for token in tokenize_like_immich(line))))
        conn.execute(
            'INSERT INTO ocr_search ("assetId", text) SELECT c.id, t.text '
            "FROM clone c JOIN clone_search t ON t.k = c.n %% %s",
            (len(texts),),
        )
        conn.commit()
    return missing


def copy_rows(conn: Any, table: str) -> None:
    """Copy the template's rows of `table` (keyed by "assetId") to each clone."""
    columns = [
        str(row[0])
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = %s AND table_schema = 'public' ORDER BY ordinal_position",
            (table,),
        )
    ]
    if not columns:
        return
    skipped = DEFAULTED | ({"id"} if "assetId" in columns else set())
    kept = [c for c in columns if c not in skipped]
    names = ", ".join(f'"{c}"' for c in kept)
    path_fix = {"path": "r.path || '.clone-' || c.n"}
    values = ", ".join(path_fix.get(c, "c.id" if c == "assetId" else f'r."{c}"') for c in kept)
    conn.execute(
        f"INSERT INTO {table} ({names}) SELECT {values} "
        f'FROM clone c JOIN {table} r ON r."assetId" = c.template'
    )


def queries(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """A bounded mix: plain (hybrid), ocr: and the filter modal's OCR type, over common and rare words."""
    words = WORDS[:40] + WORDS[-20:]
    mix: list[tuple[str, dict[str, Any]]] = []
    for word in words:
        mix.append(("plain", {"path": "/search/smart", "json": {"query": word, "size": 100}}))
        mix.append(("ocr:", {"path": "/search/smart", "json": {"query": f"ocr:{word}", "size": 100}}))
        mix.append(("metadata ocr", {"path": "/search/metadata", "json": {"ocr": word, "size": 100}}))
    rng.shuffle(mix)
    return mix


async def load(url: str, token: str, seconds: float, concurrency: int) -> dict[str, Any]:
    rng = random.Random(11)
    mix = queries(rng)
    latencies: dict[str, list[float]] = {kind: [] for kind, _ in mix}
    errors: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"{url}/api", headers=headers, timeout=120) as client:

        async def worker(offset: int) -> None:
            index = offset
            while time.monotonic() < deadline:
                kind, request = mix[index % len(mix)]
                index += concurrency
                started = time.perf_counter()
                try:
                    response = await client.post(request["path"], json=request["json"])
                except httpx.HTTPError as error:
                    errors[f"{kind}: {type(error).__name__}"] += 1
                    continue
                if response.status_code != 200:
                    errors[f"{kind}: HTTP {response.status_code}"] += 1
                    continue
                latencies[kind].append(time.perf_counter() - started)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))

    def figures(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else 0.0
        return {
            "count": len(ordered),
            "p50_ms": round(1000 * statistics.median(ordered), 1) if ordered else 0.0,
            "p95_ms": round(1000 * p95, 1),
        }

    return {
        "errors": dict(errors),
        "latency": {kind: figures(values) for kind, values in latencies.items()},
        "requests_per_s": round(sum(len(v) for v in latencies.values()) / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", required=True)
    parser.add_argument("--immich-version", default="v3.1.0")
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--cache", type=Path, default=cache_root() / "e2e")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="search-load-"))
    logs = work / "logs"
    tree = build.prepare_tree(
        args.immich_version, args.source, args.cache, patched=True, fresh=False, log_dir=logs
    )
    build.build_tree(tree, args.cache, logs)
    node = build.find_toolchain(tree).node
    weights = args.cache / "cn-clip"
    clip_weights.ensure_random_checkpoint(weights)
    ml_env = {
        "IMMICH_AIO_ML_CLIP_WEIGHTS_DIR": str(weights),
        "IMMICH_AIO_ML_PRELOAD": f"ocr,{DEFAULT_CN_CLIP_MODEL}",
    }
    with Supervisor(logs) as supervisor:
        ports = PortAllocator()
        support = services.start_support(supervisor, ports, work, ml_env, build.immich_aio_command())
        url = services.start_immich(
            supervisor, ports, support, tree, node, build.build_data_dir(tree, work / "data")
        )
        library = Library(ImmichClient(url), support.database_url, supervisor, support.ml_url)
        checks.set_up_admin(library, support.ml_url, DEFAULT_CN_CLIP_MODEL)
        checks.upload_all(library, work / "images", Report(work / "report"))
        library.wait_processed(list(library.assets.values()))
        started = time.monotonic()
        added = clone_library(support.database_url, args.assets)
        fill_seconds = time.monotonic() - started
        with psycopg.connect(support.database_url, autocommit=True) as conn:
            conn.execute("ANALYZE")
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM asset), (SELECT count(*) FROM asset_ocr), "
                "(SELECT count(*) FROM smart_search), (SELECT count(*) FROM immich_aio.asset_ocr_document)"
            ).fetchone()
        assert counts is not None and library.client.access_token
        result = asyncio.run(load(url, library.client.access_token, args.minutes * 60, args.concurrency))
        supervisor.check_alive()
        result.update(
            {
                "immich_version": args.immich_version,
                "library": dict(
                    zip(("assets", "ocr_boxes", "embeddings", "ocr_documents"), counts, strict=True)
                ),
                "cloned": added,
                "fill_seconds": round(fill_seconds, 1),
                "concurrency": args.concurrency,
                "minutes": args.minutes,
            }
        )
        library.client.close()
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
