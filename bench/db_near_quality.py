"""Benchmark: OCR search on hard photos, where OCR misreads characters: near matches against upstream's.

The seeded hard corpus of testsupport.ocr_corpus (perspective, blur, JPEG q40, low light, small print,
textured photo backgrounds, vertical text, a third Traditional, five Debian CJK faces) is read by
ml_service's own OCR and stored as Immich v3.1 stores it. Queries are cut from the gold lines: 1–2, 3–4,
5–8 and 9–16 character Han stretches, Latin words, and Simplified queries for the Traditional images. The
near-match cases of testsupport.near_cases (OCR text given as read, not rendered: the misreads a photo would
need luck to produce) join the same library as one more class, their negative cases as distractors that no
query may return. Four searches on the same stored OCR, side by side:
  * immich_aio        immich_aio.search_ocr: exact matches, then near matches (one edit);
  * immich_aio exact  the exact query alone (what the search did before near matches);
  * upstream          Immich v3.1's own OCR search reproduced in SQL (bigram tokens, pg_trgm %>>);
  * oracle            every image with an OCR line that contains the query exactly (folded, spaces aside):
                      the most an exact search can find.
Truth is the gold text (both sides folded by OpenCC t2s, spaces aside). Per class: capped recall@10,
MRR@10, set precision (relevant share of what is returned, top 10), zero-result rate; how many
immich_aio result lists put a near match before an exact one (must be 0); and every query on which
upstream's recall@10 beats immich_aio's (must be none).

Usage: python -m bench.db_near_quality [--per-class 12] [--seed 2026] [--queries 40] [--ocr-cache FILE]
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import random
import re
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from PIL import Image as PILImage

from bench.db_quality import Image, load, mean_scores, ours, score, upstream
from bench.db_script_quality import truth_fold
from bench.ocr_reader import reader
from db_extension.installer import install
from e2e.postgres import EmbeddedPostgres
from testsupport.immich_schema import create_immich_schema
from testsupport.near_cases import CASES
from testsupport.ocr_corpus import TRADITIONAL, corpus

HAN = re.compile(r"[\u4e00-\u9fff]+")
LATIN = re.compile(r"[A-Za-z]{4,}")
GOAL = {"precision@10": 0.97, "mrr@10": 0.99}
CASES_CLASS = "issue cases"
CASE_BOX = [0.1, 0.1, 0.9, 0.1, 0.9, 0.2, 0.1, 0.2]


def spaceless(text: str) -> str:
    return truth_fold(text).replace(" ", "")


def read_corpus(per_class: int, seed: int, cache: Path | None) -> tuple[list[Image], list[str], float]:
    """The corpus images with their OCR (cached by arguments), and each image's script."""
    if cache and cache.exists():
        stored = json.loads(cache.read_text(encoding="utf-8"))
        if stored["per_class"] == per_class and stored["seed"] == seed:
            images = [
                Image(i["asset_id"], i["lines"], [tuple(b) for b in i["ocr"]]) for i in stored["images"]
            ]
            return images, stored["scripts"], stored["seconds_per_image"]
    read = reader()
    images, scripts, seconds = [], [], 0.0
    rng = random.Random(seed)
    for item in corpus(per_class=per_class, seed=seed):
        started = time.perf_counter()
        boxes = read(PILImage.open(io.BytesIO(item.jpeg)))
        seconds += time.perf_counter() - started
        asset = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        images.append(Image(asset, list(item.lines), boxes))
        scripts.append(item.script)
    per_image = seconds / max(len(images), 1)
    if cache:
        payload = {
            "per_class": per_class,
            "seed": seed,
            "seconds_per_image": per_image,
            "scripts": scripts,
            "images": [{"asset_id": i.asset_id, "lines": i.lines, "ocr": i.ocr} for i in images],
        }
        cache.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    return images, scripts, per_image


def queries(images: list[Image], scripts: list[str], per_class: int, seed: int) -> dict[str, list[str]]:
    """Query texts cut from the gold lines, by class (Simplified queries for Traditional images)."""
    rng = random.Random(seed)
    pools: dict[str, set[str]] = {
        "1-2 chars": set(),
        "3-4 chars": set(),
        "5-8 chars": set(),
        "9-16 chars": set(),
        "latin": set(),
    }
    traditional: set[str] = set()
    for image, script in zip(images, scripts, strict=True):
        for line in image.lines:
            simplified = truth_fold(line)
            for run in HAN.findall(simplified):
                for length, name in (
                    (2, "1-2 chars"),
                    (rng.choice((3, 4)), "3-4 chars"),
                    (rng.randint(5, 8), "5-8 chars"),
                    (min(len(run), rng.randint(9, 16)), "9-16 chars"),
                ):
                    if len(run) >= length and (length >= 9 or name != "9-16 chars"):
                        start = rng.randrange(len(run) - length + 1)
                        cut = run[start : start + length]
                        (traditional if script == TRADITIONAL and length >= 3 else pools[name]).add(cut)
            pools["latin"].update(word for word in LATIN.findall(line))
    chosen = {name: rng.sample(sorted(pool), min(per_class, len(pool))) for name, pool in pools.items()}
    chosen["traditional, queried in simplified"] = rng.sample(
        sorted(traditional), min(per_class, len(traditional))
    )
    chosen[CASES_CLASS] = sorted({case.query for case in CASES if case.found})
    return chosen


def case_images(seed: int) -> list[Image]:
    """The near-match cases as photos whose OCR read them as given (the gold line is what they say)."""
    rng = random.Random(seed + 1)
    return [
        Image(
            str(uuid.UUID(int=rng.getrandbits(128), version=4)), [case.says], [(CASE_BOX, case.read_as, 0.9)]
        )
        for case in CASES
    ]


def wrongly_found(conn: Any, images: list[Image], owner: str) -> list[str]:
    """The negative cases whose query returns the photo that only looks like it."""
    return [
        case.name
        for case, image in zip(CASES, images, strict=True)
        if not case.found and image.asset_id in ours(conn, case.query, owner)
    ]


def exact_only(conn: Any, query: str, owner: str) -> list[str]:
    rows = conn.execute(
        'SELECT d."assetId"::text FROM immich_aio.asset_ocr_document d '
        'WHERE d."ownerId" = %s AND d.document @@ immich_aio.exact_query(%s) '
        'ORDER BY immich_aio.ocr_rank(d.document, immich_aio.exact_query(%s)) DESC, d."assetId" LIMIT 10',
        (owner, query, query),
    )
    return [row[0] for row in rows]


def exact_matches(conn: Any, query: str, asset_ids: list[str]) -> list[bool]:
    """Whether each asset matches the exact query (the search's own notion: within one line's stretch)."""
    rows = conn.execute(
        'SELECT d."assetId"::text, d.document @@ immich_aio.exact_query(%s) '
        'FROM immich_aio.asset_ocr_document d WHERE d."assetId" = ANY(%s::uuid[])',
        (query, asset_ids),
    )
    exact = dict(rows.fetchall())
    return [bool(exact.get(asset)) for asset in asset_ids]


def evaluate(conn: Any, images: list[Image], owner: str, by_class: dict[str, list[str]]) -> dict[str, Any]:
    # per line, as an exact search sees the stored text (a query never spans two OCR lines)
    stored = {image.asset_id: [spaceless(text) for _, text, _ in image.ocr] for image in images}
    rows: dict[str, dict[str, list[dict[str, float]]]] = {}
    upstream_better: list[dict[str, Any]] = []
    order_violations = 0
    skipped = 0
    for name, class_queries in by_class.items():
        for query in class_queries:
            wanted = spaceless(query)
            gains = {i.asset_id: 1 if wanted in spaceless(" ".join(i.lines)) else 0 for i in images}
            if not any(gains.values()):
                skipped += 1
                continue
            oracle = sorted(
                asset for asset, lines in stored.items() if any(wanted in line for line in lines)
            )[:10]
            results = {
                "immich_aio": ours(conn, query, owner),
                "immich_aio exact": exact_only(conn, query, owner),
                "upstream": upstream(conn, query, owner),
                "oracle": oracle,
            }
            exact = exact_matches(conn, query, results["immich_aio"])
            if any(later and not earlier for earlier, later in itertools.pairwise(exact)):
                order_violations += 1
            scores = {method: score(found, gains) for method, found in results.items()}
            for method, scored in scores.items():
                rows.setdefault(method, {}).setdefault(name, []).append(scored)
            if scores["upstream"]["recall@10"] > scores["immich_aio"]["recall@10"]:
                upstream_better.append(
                    {
                        "class": name,
                        "query": query,
                        "immich_aio": scores["immich_aio"]["recall@10"],
                        "upstream": scores["upstream"]["recall@10"],
                    }
                )
    report: dict[str, Any] = {
        "near_before_exact_lists": order_violations,
        "queries_without_truth": skipped,
        "queries_upstream_finds_more": upstream_better,
    }
    for method, classes in rows.items():
        report[method] = {name: mean_scores(class_rows) for name, class_rows in classes.items()}
        report[method]["overall"] = mean_scores(
            [row for class_rows in classes.values() for row in class_rows]
        )
    return report


def run(dsn: str, per_class: int, seed: int, query_count: int, cache: Path | None) -> dict[str, Any]:
    images, scripts, seconds = read_corpus(per_class, seed, cache)
    cases = case_images(seed)
    with psycopg.connect(dsn, autocommit=True) as conn:
        create_immich_schema(conn, with_clip_index=False)
        owner = load(conn, images + cases, random.Random(seed))
    install(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        report = evaluate(conn, images + cases, owner, queries(images, scripts, query_count, seed))
        report["negative_cases_found"] = wrongly_found(conn, cases, owner)
    lines = [(line, image) for image in images for line in image.lines]
    exact_lines = sum(
        1 for line, image in lines if any(spaceless(line) == spaceless(text) for _, text, _ in image.ocr)
    )
    return {
        "images": len(images),
        "ocr_seconds_per_image": round(seconds, 3),
        "ocr_lines_read_exactly": round(exact_lines / max(len(lines), 1), 4),
        "goal": GOAL,
        **report,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-class", type=int, default=12)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--queries", type=int, default=40, help="queries per class")
    parser.add_argument("--dsn", help="Use this (empty) database instead of a throwaway cluster.")
    parser.add_argument("--ocr-cache", type=Path, help="JSON file to reuse the OCR results between runs.")
    args = parser.parse_args()
    if args.dsn:
        report = run(args.dsn, args.per_class, args.seed, args.queries, args.ocr_cache)
    else:
        with EmbeddedPostgres(database="near_quality") as cluster:
            report = run(cluster.dsn, args.per_class, args.seed, args.queries, args.ocr_cache)
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
