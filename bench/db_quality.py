"""Benchmark: Chinese OCR retrieval quality, immich-aio ranking vs upstream Immich's method, as JSON.

Images are rendered with a real CJK font, read back by ml_service's OCR (its default model, PP-OCRv5
mobile), stored as Immich v3.1 stores them (asset_ocr boxes + ocr_search tokens), and searched two ways:
  * immich_aio.search_ocr (this project), and
  * upstream Immich v3.1 reproduced in SQL: CJK-bigram tokens (tokenizeForSearch) matched with pg_trgm
    strict word similarity (%>>) on ocr_search, newest first.
Ground truth is the *rendered* text: an image is relevant when every space-separated part of the query
occurs in it, or in it written without spaces (case/width-folded).

Usage: python -m bench.db_quality [--images 120] [--seed 7] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from bench.ocr_reader import reader
from db_extension.installer import install
from e2e.postgres import EmbeddedPostgres
from testsupport.immich_schema import create_immich_schema, tokenize_like_immich

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")

TITLES = [
    "茶",
    "奶茶店",
    "上海南站",
    "上海西站",
    "北京西站",
    "鸡蛋饼",
    "鸡蛋面",
    "牛肉面馆",
    "停车场",
    "增值税发票",
    "候车室",
    "洗手间",
    "咖啡",
    "超市",
    "人民医院",
    "地铁站",
    "门票",
    "药店",
    "一帆风顺",
    "万事如意",
    "酒店",
    "会员中心",
    "营业时间",
    "安全出口",
    "便利店",
    "米饭套餐",
    "鲜鱼",
    "矿泉水",
    "饮品",
    "WIFI",
    "B2层",
]
LINES = [
    "营业时间 9:00-21:00",
    "WIFI5G密码:88886666",
    "合计 ¥35.00",
    "¥12.50",
    "35号",
    "3号出口",
    "请勿吸烟",
    "本店提供奶茶和咖啡",
    "绿茶 15元",
    "红茶 18元",
    "半糖 少冰",
    "鸡蛋饼 6元",
    "鸡蛋面 12元",
    "开票日期 2024年03月15日",
    "发票代码 044031900111",
    "VIP会员 8折",
    "Coffee & Tea",
    "欢迎光临",
    "出口 Exit",
    "上海南站 出口",
    "检票口 A3",
    "门票 ¥80",
    "地铁2号线",
    "停车 5元/小时",
    "南广场",
    "药品 非处方",
    "酒水 饮料",
    "鱼香肉丝",
    "米线",
    "矿泉水 ¥2",
    "一帆风顺 万事如意",
    "新年快乐",
    "电梯 B2层",
    "超市 24小时",
    "热水 开水间",
]
QUERIES: dict[str, list[str]] = {
    "1-char": ["茶", "面", "票", "站", "药", "鱼", "米", "水", "酒", "饼"],
    "2-char": ["发票", "奶茶", "出口", "密码", "停车", "咖啡", "超市", "医院", "门票", "地铁"],
    "3-4-char": [
        "上海南",
        "鸡蛋饼",
        "鸡蛋面",
        "停车场",
        "营业时间",
        "候车室",
        "洗手间",
        "北京西站",
        "一帆风顺",
        "检票口",
    ],
    "phrase": ["营业时间 9:00", "上海南站 出口", "奶茶 半糖", "鸡蛋饼 6元", "发票 2024年", "绿茶 15元"],
    "mixed": ["WIFI", "5G", "¥35", "35号", "VIP会员", "WIFI5G", "Coffee", "¥12.50", "2024年", "B2层"],
}


@dataclass(frozen=True)
class Corpus:
    """What the rendered photos say: a title line and a few body lines each, in one font."""

    titles: list[str]
    lines: list[str]
    font: Path = FONT_PATH
    font_index: int = 0  # the face within a .ttc collection


SIMPLIFIED = Corpus(TITLES, LINES)


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def relevant(query: str, rendered: str, folding: Callable[[str], str] = fold) -> bool:
    """Every part of the query is in the text, or in the text written without spaces (OCR glues words)."""
    text = folding(rendered)
    spaceless = text.replace(" ", "")
    return all(part in text or part in spaceless for part in folding(query).split())


def gain(query: str, lines: list[str], folding: Callable[[str], str] = fold) -> int:
    """Graded relevance: 2 when the title line alone contains the query, 1 when the image does, else 0."""
    if relevant(query, lines[0], folding):
        return 2
    return 1 if relevant(query, " ".join(lines), folding) else 0


@dataclass
class Image:
    asset_id: str
    lines: list[str]
    ocr: list[tuple[list[float], str, float]]


def render_and_ocr(
    rng: random.Random, count: int, cache: Path | None = None, corpus: Corpus = SIMPLIFIED
) -> tuple[list[Image], float]:
    """Render `count` images and OCR them; with `cache`, reuse (or store) the OCR results of this seed."""
    if cache and cache.exists():
        stored = json.loads(cache.read_text(encoding="utf-8"))
        if stored["count"] == count:
            rng.setstate(_rng_state(stored["rng_state"]))
            images = [
                Image(item["asset_id"], item["lines"], [tuple(box) for box in item["ocr"]])
                for item in stored["images"]
            ]
            return images, stored["ocr_seconds_per_image"]
    images, seconds = _render_and_ocr(rng, count, corpus)
    if cache:
        payload = {
            "count": count,
            "rng_state": _jsonable_state(rng.getstate()),
            "ocr_seconds_per_image": seconds,
            "images": [{"asset_id": i.asset_id, "lines": i.lines, "ocr": i.ocr} for i in images],
        }
        cache.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    return images, seconds


def _jsonable_state(state: tuple[Any, ...]) -> list[Any]:
    return [state[0], list(state[1]), state[2]]


def _rng_state(stored: list[Any]) -> tuple[Any, ...]:
    return (stored[0], tuple(stored[1]), stored[2])


def _render_and_ocr(rng: random.Random, count: int, corpus: Corpus) -> tuple[list[Image], float]:
    read = reader()
    title_font = ImageFont.truetype(str(corpus.font), 84, index=corpus.font_index)
    body_font = ImageFont.truetype(str(corpus.font), 40, index=corpus.font_index)
    titles = corpus.titles
    images = []
    ocr_seconds = 0.0
    for index in range(count):
        title = titles[index % len(titles)] if index < len(titles) * 2 else rng.choice(titles)
        lines = [title, *rng.sample(corpus.lines, rng.randint(1, 3))]
        canvas = PILImage.new("RGB", (1000, 700), "white")
        draw = ImageDraw.Draw(canvas)
        draw.text((60, 40), title, font=title_font, fill="black")
        y = 200
        for line in lines[1:]:
            draw.text((60 + rng.randint(0, 120), y), line, font=body_font, fill=(30, 30, 30))
            y += 60 + rng.randint(0, 90)
        started = time.perf_counter()
        boxes = read(canvas)
        ocr_seconds += time.perf_counter() - started
        images.append(
            Image(asset_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), lines=lines, ocr=boxes)
        )
    return images, ocr_seconds / max(count, 1)


def load(conn: Any, images: list[Image], rng: random.Random) -> str:
    owner = str(uuid.uuid4())
    conn.execute("INSERT INTO \"user\" (id, email) VALUES (%s, 'bench@example.com')", (owner,))
    for image in images:
        # Random dates: upstream returns newest first, whatever the relevance.
        conn.execute(
            'INSERT INTO asset (id, "ownerId", "fileCreatedAt") '
            "VALUES (%s, %s, now() - make_interval(days => %s))",
            (image.asset_id, owner, rng.randint(0, 2000)),
        )
        for box, text, score in image.ocr:
            conn.execute(
                'INSERT INTO asset_ocr ("assetId", x1, y1, x2, y2, x3, y3, x4, y4, "boxScore", "textScore", '
                "text) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0.9, %s, %s)",
                (image.asset_id, *box, score, text),
            )
        if image.ocr:
            tokens = [token for _, text, _ in image.ocr for token in tokenize_like_immich(text)]
            conn.execute("INSERT INTO ocr_search VALUES (%s, %s)", (image.asset_id, " ".join(tokens)))
    return owner


def ours(conn: Any, query: str, owner: str) -> list[str]:
    rows = conn.execute(
        'SELECT "assetId"::text FROM immich_aio.search_ocr(%s, %s::uuid[], 10)', (query, [owner])
    )
    return [row[0] for row in rows]


def upstream(conn: Any, query: str, owner: str) -> list[str]:
    tokens = " ".join(tokenize_like_immich(query))
    rows = conn.execute(
        'SELECT a.id::text FROM asset a JOIN ocr_search s ON s."assetId" = a.id '
        'WHERE a."ownerId" = %s AND a."deletedAt" IS NULL AND f_unaccent(s.text) %%>> f_unaccent(%s) '
        'ORDER BY a."fileCreatedAt" DESC, a.id LIMIT 10',
        (owner, tokens),
    )
    return [row[0] for row in rows]


def score(results: list[str], gains: dict[str, int]) -> dict[str, float]:
    relevant_ids = {asset for asset, value in gains.items() if value > 0}
    hits = [asset in relevant_ids for asset in results[:10]]
    first = next((rank for rank, hit in enumerate(hits, start=1) if hit), None)
    ideal = sorted(gains.values(), reverse=True)[:10]
    dcg = sum(gains.get(asset, 0) / math.log2(rank + 1) for rank, asset in enumerate(results[:10], start=1))
    ideal_dcg = sum(value / math.log2(rank + 1) for rank, value in enumerate(ideal, start=1))
    return {
        "recall@10": sum(hits) / min(len(relevant_ids), 10),
        "precision@10": sum(hits) / len(hits) if hits else 0.0,
        "mrr@10": 1.0 / first if first else 0.0,
        "ndcg@10": dcg / ideal_dcg if ideal_dcg else 0.0,
        "zero_result": 0.0 if results else 1.0,
    }


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(sum(row[key] for row in rows) / len(rows), 4) for key in rows[0]} if rows else {}


def evaluate(
    conn: Any,
    images: list[Image],
    owner: str,
    queries: dict[str, list[str]],
    folding: Callable[[str], str] = fold,
) -> tuple[dict[str, dict[str, list[dict[str, float]]]], list[dict[str, Any]], list[str]]:
    """Each query both ways; the scores by method and class, immich-aio's misses, queries without truth."""
    by_class: dict[str, dict[str, list[dict[str, float]]]] = {}
    failures: list[dict[str, Any]] = []
    skipped = []
    for query_class, class_queries in queries.items():
        for query in class_queries:
            gains = {image.asset_id: gain(query, image.lines, folding) for image in images}
            relevant_ids = {asset for asset, value in gains.items() if value}
            if not relevant_ids:
                skipped.append(query)
                continue
            for method, search in (("immich_aio", ours), ("upstream", upstream)):
                result = search(conn, query, owner)
                scores = score(result, gains)
                by_class.setdefault(method, {}).setdefault(query_class, []).append(scores)
                if method == "immich_aio" and (scores["recall@10"] < 1 or scores["mrr@10"] < 1):
                    missed = [image for image in images if image.asset_id in relevant_ids - set(result)]
                    failures.append(
                        {
                            "query": query,
                            **scores,
                            "relevant": len(relevant_ids),
                            "missed_ocr_text": [[text for _, text, _ in image.ocr] for image in missed[:3]],
                        }
                    )
    return by_class, failures, skipped


def run(dsn: str, image_count: int, seed: int, cache: Path | None = None) -> dict[str, Any]:
    rng = random.Random(seed)
    images, ocr_seconds = render_and_ocr(rng, image_count, cache)
    with psycopg.connect(dsn, autocommit=True) as conn:
        create_immich_schema(conn, with_clip_index=False)
        owner = load(conn, images, rng)
    install(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        by_class, failures, skipped = evaluate(conn, images, owner, QUERIES)
    report: dict[str, Any] = {
        "images": image_count,
        "ocr_boxes": sum(len(image.ocr) for image in images),
        "ocr_seconds_per_image": round(ocr_seconds, 3),
        "ocr_exact_line_rate": round(
            sum(
                1
                for image in images
                for line in image.lines
                if any(fold(line).replace(" ", "") == fold(text).replace(" ", "") for _, text, _ in image.ocr)
            )
            / sum(len(image.lines) for image in images),
            4,
        ),
        "skipped_queries_without_relevant_images": skipped,
        "immich_aio_misses": failures,
    }
    for method, classes in by_class.items():
        report[method] = {name: mean_scores(rows) for name, rows in classes.items()}
        report[method]["overall"] = mean_scores([row for rows in classes.values() for row in rows])
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dsn", help="Use this (empty) database instead of a throwaway cluster.")
    parser.add_argument("--ocr-cache", type=Path, help="JSON file to reuse the OCR results between runs.")
    args = parser.parse_args()
    if args.dsn:
        report = run(args.dsn, args.images, args.seed, args.ocr_cache)
    else:
        with EmbeddedPostgres() as cluster:
            report = run(cluster.dsn, args.images, args.seed, args.ocr_cache)
    print(json.dumps({"benchmark": "db_quality", **report}, ensure_ascii=False))


if __name__ == "__main__":
    main()
