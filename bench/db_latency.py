"""Benchmark: OCR-only, hybrid and vector-only search latency, index builds and backfill, as JSON.

Usage: python -m bench.db_latency --assets 10000 100000 [--queries 200] [--repeats 3] [--dsn DSN [--reuse]]
Without --dsn each size runs in its own throwaway PostgreSQL 15 + pgvector cluster. With --dsn and
--reuse, a library of the same size loaded by an earlier run is measured again without reloading.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import Any

import psycopg

from db_extension.backfill import backfill
from db_extension.installer import install
from e2e.postgres import EmbeddedPostgres
from testsupport.immich_schema import CLIP_INDEX, create_immich_schema
from testsupport.synthetic import LATIN, WORDS, load_library

VECTOR_ONLY = """
SELECT a.id FROM asset a JOIN smart_search s ON s."assetId" = a.id
WHERE a."ownerId" = ANY(%(users)s::uuid[]) AND a."deletedAt" IS NULL AND a.visibility <> 'locked'
ORDER BY s.embedding <=> %(v)s::vector, a.id
LIMIT %(limit)s
"""
# The same without the id tiebreak: pure index order (Immich's shape above adds an incremental sort).
VECTOR_INDEX_ORDER = VECTOR_ONLY.replace(", a.id\n", "\n")
# The CLIP half of search_hybrid alone (its 200 candidates): how much OCR and fusion add on top of it.
CLIP_CANDIDATES = VECTOR_INDEX_ORDER.replace("%(limit)s", "200")
OCR_ONLY = 'SELECT "assetId" FROM immich_aio.search_ocr(%(q)s, %(users)s::uuid[], %(limit)s)'
HYBRID = 'SELECT "assetId" FROM immich_aio.search_hybrid(%(q)s, %(v)s::vector, %(users)s::uuid[], %(limit)s)'
# The same searches with exact matches only (near matches off): the peer the near-match cost is read against.
OCR_ONLY_EXACT = OCR_ONLY.replace("%(limit)s)", "%(limit)s, near => false)")
HYBRID_EXACT = HYBRID.replace("%(limit)s)", "%(limit)s, near => false)")
# The `ocr:` search as the patched servers' query builder writes it: one statement over ocr_query (exact and
# every near variant) and ocr_rank, with the query text as a parameter.
OCR_BUILDER = """
SELECT d."assetId" FROM immich_aio.asset_ocr_document d
WHERE d.document @@ immich_aio.ocr_query(%(q)s) AND d."ownerId" = ANY(%(users)s::uuid[]) AND d.searchable
ORDER BY immich_aio.ocr_rank(d.document, immich_aio.ocr_query(%(q)s)) DESC, d."assetId"
LIMIT %(limit)s
"""
OCR_BUILDER_EXACT = OCR_BUILDER.replace("ocr_query", "exact_query")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def query_texts(rng: random.Random, count: int) -> list[str]:
    """A mix like real searches: single characters, words, numbers and Latin tokens, two-word queries."""
    texts = []
    for _ in range(count):
        roll = rng.random()
        word = rng.choice(WORDS)
        if roll < 0.2:
            texts.append(rng.choice(word))
        elif roll < 0.7:
            texts.append(word)
        elif roll < 0.85:
            texts.append(f"{word} {rng.choice(WORDS)}")
        else:
            texts.append(rng.choice(LATIN))
    return texts


def timed(conn: Any, sql: str, params: dict[str, Any], ef_search: int = 200) -> tuple[float, int]:
    started = time.perf_counter()
    with conn.transaction():
        conn.execute(f"SET LOCAL hnsw.ef_search = {ef_search}")
        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        # never a server-side prepared statement: after five runs PostgreSQL may switch one to a generic
        # plan, in which the query-building functions run once per row instead of once per search
        rows = conn.execute(sql, params, prepare=False).fetchall()
    return (time.perf_counter() - started) * 1000.0, len(rows)


def loaded_assets(conn: Any) -> int:
    """Assets already in the database (0 when Immich's tables do not exist yet)."""
    if conn.execute("SELECT to_regclass('asset')").fetchone()[0] is None:
        return 0
    return int(conn.execute("SELECT count(*) FROM asset").fetchone()[0])


def run_size(
    dsn: str,
    assets: int,
    queries: int,
    seed: int,
    immich_shape: bool = True,
    reuse: bool = False,
    repeats: int = 1,
) -> dict[str, Any]:
    result: dict[str, Any] = {"assets": assets, "repeats": repeats}
    with psycopg.connect(dsn) as conn:
        present = loaded_assets(conn)
        if reuse and present == assets:
            # A library this script (or db_extension.synthetic) loaded earlier, with its HNSW index:
            # loading 1M embeddings and building the index take most of an hour on 2 cores.
            result["load"] = result["hnsw_build_s"] = "reused from an earlier run"
            conn.execute(CLIP_INDEX)
            conn.commit()
        elif present:
            raise SystemExit(f"the database already holds {present} assets; use an empty one (or --reuse)")
        else:
            create_immich_schema(conn, with_clip_index=False)
            library = load_library(conn, assets=assets, seed=seed)
            result["load"] = {
                **library.timings,
                "ocr_assets": library.ocr_assets,
                "ocr_boxes": library.ocr_boxes,
            }
            started = time.perf_counter()
            conn.execute("SET maintenance_work_mem = '1GB'")
            conn.execute(CLIP_INDEX)
            conn.commit()
            result["hnsw_build_s"] = round(time.perf_counter() - started, 2)
    # Install without the inline backfill, then time the batched backfill (the rate users will see).
    install(dsn, backfill=False)
    report = backfill(dsn, batch_size=5000)
    result["backfill"] = {
        "assets": report.assets,
        "seconds": round(report.seconds, 2),
        "assets_per_s": round(report.assets / report.seconds, 1) if report.seconds else None,
    }
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("REINDEX INDEX immich_aio.asset_ocr_document_gin")
        result["gin_build_s"] = round(time.perf_counter() - started, 2)
        conn.execute("VACUUM ANALYZE")
        # Live sync cost: one Immich-style OCR replacement (delete + insert 3 boxes) per statement.
        ids = [row[0] for row in conn.execute("SELECT id FROM asset ORDER BY random() LIMIT 200")]
        started = time.perf_counter()
        for asset_id in ids:
            conn.execute(
                'WITH d AS (DELETE FROM asset_ocr WHERE "assetId" = %(a)s) '
                'INSERT INTO asset_ocr ("assetId", x1, y1, x2, y2, x3, y3, x4, y4, "boxScore", "textScore", '
                "text) "
                "SELECT %(a)s, 0, y, 1, y, 1, y + 0.05, 0, y + 0.05, 0.9, 0.9, t "
                "FROM (VALUES (0.1, '停车场入口'), (0.2, '营业时间 9:00'), (0.3, '¥35.00')) AS v(y, t)",
                {"a": asset_id},
            )
        result["ocr_upsert_with_trigger_ms"] = round((time.perf_counter() - started) * 1000 / len(ids), 3)

        users = [row[0] for row in conn.execute('SELECT id::text FROM "user" ORDER BY id')]
        main_user = conn.execute(
            'SELECT "ownerId"::text FROM asset GROUP BY 1 ORDER BY count(*) DESC LIMIT 1'
        )
        searcher = [main_user.fetchone()[0]]  # type: ignore[index]
        rng = random.Random(seed)
        texts = query_texts(rng, queries)
        vectors = [
            row[0]
            for row in conn.execute(
                "SELECT embedding::text FROM smart_search TABLESAMPLE BERNOULLI (5) LIMIT %s", (queries,)
            )
        ]
        while len(vectors) < queries:
            vectors += vectors
        # (query, hnsw.ef_search); search_hybrid sets its own, 1.5 x its candidate depth, which
        # clip_candidates_200 copies by hand
        kinds = {
            "vector_only": (VECTOR_ONLY, 200),
            "vector_index_order": (VECTOR_INDEX_ORDER, 200),
            "clip_candidates_200": (CLIP_CANDIDATES, 300),
            "ocr_only": (OCR_ONLY, 200),
            "ocr_only_exact": (OCR_ONLY_EXACT, 200),
            "hybrid": (HYBRID, 200),
            "hybrid_exact": (HYBRID_EXACT, 200),
            "ocr_builder": (OCR_BUILDER, 200),
            "ocr_builder_exact": (OCR_BUILDER_EXACT, 200),
        }
        if not immich_shape:
            del kinds["vector_only"]
        timings: dict[str, list[float]] = {name: [] for name in kinds}
        result_counts: dict[str, list[int]] = {name: [] for name in kinds}
        for warmup in range(min(20, queries)):
            params = {"q": texts[warmup], "v": vectors[warmup], "users": searcher, "limit": 100}
            for sql, ef_search in kinds.values():
                timed(conn, sql, params, ef_search)
        for index in range(queries):
            params = {"q": texts[index], "v": vectors[index], "users": searcher, "limit": 100}
            # each kind in turn, `repeats` rounds: a query's median is its latency, so a burst of load
            # from elsewhere on a shared machine moves one sample rather than the percentile
            samples: dict[str, list[float]] = {name: [] for name in kinds}
            counts: dict[str, int] = {}
            for _ in range(repeats):
                for name, (sql, ef_search) in kinds.items():
                    elapsed, counts[name] = timed(conn, sql, params, ef_search)
                    samples[name].append(elapsed)
            for name in kinds:
                timings[name].append(statistics.median(samples[name]))
                result_counts[name].append(counts[name])
        result["latency_ms"] = {
            name: {
                "p50": round(statistics.median(values), 2),
                "p95": round(percentile(values, 0.95), 2),
                "mean": round(statistics.fmean(values), 2),
                "mean_results": round(statistics.fmean(result_counts[name]), 1),
            }
            for name, values in timings.items()
        }
        hybrid_p50 = result["latency_ms"]["hybrid"]["p50"]
        for baseline in ("vector_only", "vector_index_order", "clip_candidates_200"):
            if baseline in result["latency_ms"]:
                ratio = hybrid_p50 / result["latency_ms"][baseline]["p50"]
                result[f"hybrid_over_{baseline}_p50"] = round(ratio, 2)
        for name in ("ocr_only", "hybrid", "ocr_builder"):
            exact = result["latency_ms"][f"{name}_exact"]
            result[f"{name}_near_over_exact_p95"] = round(result["latency_ms"][name]["p95"] / exact["p95"], 2)
        result["users"] = len(users)
        result["plans"] = plans(conn, searcher, texts[0], vectors[0])
    return result


def plans(conn: Any, users: list[str], text: str, vector: str) -> dict[str, str]:
    """Top lines of the candidate queries' plans, to show both are index-backed."""
    out = {}
    with conn.transaction():
        conn.execute("SET LOCAL hnsw.ef_search = 200")
        for name, sql in {
            "clip_candidates": (
                'EXPLAIN SELECT s."assetId" FROM smart_search s JOIN asset a ON a.id = s."assetId" '
                'WHERE a."ownerId" = ANY(%(u)s::uuid[]) AND a."deletedAt" IS NULL '
                "AND a.visibility::text NOT IN ('locked', 'hidden') "
                "ORDER BY s.embedding <=> %(v)s::vector LIMIT 200"
            ),
            # the two bounded OCR candidate pools of search_hybrid (depth 200 -> 400 documents each)
            "ocr_candidates_title": (
                'EXPLAIN SELECT d."assetId" FROM immich_aio.asset_ocr_document d '
                'WHERE d.title @@ immich_aio.ocr_query(%(q)s) AND d."ownerId" = ANY(%(u)s::uuid[]) '
                "AND d.searchable LIMIT 400"
            ),
            "ocr_candidates_any": (
                'EXPLAIN SELECT d."assetId" FROM immich_aio.asset_ocr_document d '
                'WHERE d.document @@ immich_aio.ocr_query(%(q)s) AND d."ownerId" = ANY(%(u)s::uuid[]) '
                "AND d.searchable LIMIT 400"
            ),
        }.items():
            rows = conn.execute(sql, {"u": users, "v": vector, "q": text}).fetchall()
            out[name] = " | ".join(row[0].strip() for row in rows if "Scan" in row[0])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--repeats", type=int, default=1, help="Runs of each query; its median is its latency."
    )
    parser.add_argument(
        "--dsn", help="Use this (empty, Immich-less) database instead of a throwaway cluster."
    )
    parser.add_argument(
        "--skip-immich-shape", action="store_true", help="Skip Immich's slow id-tiebreak vector query."
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="With --dsn: keep a synthetic library of the same size loaded by an earlier run.",
    )
    args = parser.parse_args()
    results = []
    for size in args.assets:
        if args.dsn:
            results.append(
                run_size(
                    args.dsn,
                    size,
                    args.queries,
                    args.seed,
                    not args.skip_immich_shape,
                    args.reuse,
                    args.repeats,
                )
            )
        else:
            with EmbeddedPostgres(settings={"shared_buffers": "2GB", "work_mem": "64MB"}) as cluster:
                results.append(
                    run_size(
                        cluster.dsn,
                        size,
                        args.queries,
                        args.seed,
                        not args.skip_immich_shape,
                        repeats=args.repeats,
                    )
                )
        print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    print(json.dumps({"benchmark": "db_latency", "results": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
