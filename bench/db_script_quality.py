"""Benchmark: OCR search across scripts (Traditional and Simplified find each other) and glued Latin words.

A corpus of rendered Traditional-text photos (shop signs, menus, receipts, station names; Noto Sans CJK TC
from Debian's fonts-noto-cjk, full Traditional coverage) is mixed with db_quality's Simplified one; the OCR
of ml_service reads both back. `--traditional-font uming` renders it in AR PL UMing (fonts-arphic-uming)
instead, a Ming face the OCR reads less well: that run measures OCR as much as search.

Queries: Simplified for Traditional text, Traditional for Simplified text, variant forms (臺/台, 裏/裡/里,
綫/線/线), glued Latin words (OCR drops spaces between them) with prices that must stay precise, and
db_quality's Simplified-only queries, which must lose nothing. Ground truth is the rendered text, both sides
folded by OpenCC's t2s (a code path apart from the SQL's own fold map). Upstream Immich v3.1's OCR search
runs beside it on the same queries.

Usage: python -m bench.db_script_quality [--images 120] [--traditional 120] [--traditional-font noto|uming]
       [--seed 7] [--dsn DSN] [--ocr-cache DIR]
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import opencc
import psycopg

from bench.db_quality import QUERIES, Corpus, Image, evaluate, fold, load, mean_scores, render_and_ocr
from db_extension.installer import install
from e2e.postgres import EmbeddedPostgres
from testsupport.immich_schema import create_immich_schema

TRADITIONAL_FONTS = {
    "noto": (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), 3),  # face 3: Noto Sans CJK TC
    "uming": (Path("/usr/share/fonts/truetype/arphic/uming.ttc"), 0),
}
TRADITIONAL = Corpus(
    titles=[
        "臺北車站",
        "統一發票",
        "營業時間",
        "停車場",
        "藥局",
        "麵包店",
        "牛肉麵",
        "捷運站",
        "洗手間",
        "銀行",
        "郵局",
        "書店",
        "醫院",
        "機場",
        "餐廳",
        "滷肉飯",
        "全聚德 Peking Duck",
        "鐵板燒",
        "裏面請",
        "綫上訂位",
    ],
    lines=[
        "統一發票 2024年",
        "營業時間 10:00-22:00",
        "臺北捷運 淡水線",
        "總計 NT$120",
        "珍珠奶茶 大杯 55元",
        "出口 Exit",
        "請勿吸菸",
        "會員卡 9折",
        "高雄 左營站",
        "台灣大學",
        "歡迎光臨",
        "雞蛋餅 35元",
        "CoffeeShop 咖啡",
        "MRT Taipei Main Station",
        "裡面有位",
        "電話 02-2311-1234",
    ],
)
CROSS_QUERIES: dict[str, list[str]] = {
    "simplified-for-traditional": [
        "台北车站",
        "发票",
        "营业时间",
        "药局",
        "面包店",
        "牛肉面",
        "捷运",
        "银行",
        "邮局",
        "医院",
        "机场",
        "卤肉饭",
        "铁板烧",
        "会员卡",
    ],
    "traditional-for-simplified": [
        "發票",
        "停車場",
        "營業時間",
        "雞蛋餅",
        "醫院",
        "門票",
        "地鐵",
        "洗手間",
        "藥店",
        "飲品",
        "鮮魚",
        "候車室",
    ],
    "variants": ["台北", "臺北", "臺灣", "里面", "裡面", "裏面", "线上", "綫上", "線上"],
    "mixed-script": ["台北 捷運", "统一發票", "珍珠奶茶 55元", "出口 Exit", "鸡蛋餅"],
    "glued-latin": [
        "Peking Duck",
        "PekingDuck",
        "Duck",
        "Coffee Shop",
        "Shop",
        "Main Station",
        "NT$120",
        "¥35",
    ],
    **{f"simplified-only {name}": queries for name, queries in QUERIES.items()},
}
GOAL = {"recall@10": 0.98, "mrr@10": 0.95}


@cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def truth_fold(text: str) -> str:
    folded: str = _t2s().convert(fold(text))
    return folded


def exact_line_rate(images: list[Image]) -> float:
    """The share of rendered lines the OCR read back exactly (spaces aside)."""
    lines = [(line, image) for image in images for line in image.lines]
    read = sum(
        1
        for line, image in lines
        if any(fold(line).replace(" ", "") == fold(text).replace(" ", "") for _, text, _ in image.ocr)
    )
    return round(read / max(len(lines), 1), 4)


def run(
    dsn: str, simplified: int, traditional: int, seed: int, cache_dir: Path | None, font: str = "noto"
) -> dict[str, Any]:
    rng = random.Random(seed)
    first = cache_dir / f"simplified-{seed}-{simplified}.json" if cache_dir else None
    second = cache_dir / f"traditional-{font}-{seed}-{traditional}.json" if cache_dir else None
    images, _ = render_and_ocr(rng, simplified, first)
    path, index = TRADITIONAL_FONTS[font]
    corpus = replace(TRADITIONAL, font=path, font_index=index)
    more, _ = render_and_ocr(random.Random(seed + 1), traditional, second, corpus)
    images += more
    with psycopg.connect(dsn, autocommit=True) as conn:
        create_immich_schema(conn, with_clip_index=False)
        owner = load(conn, images, rng)
    install(dsn)

    # Truth twice: the rendered text (end to end, OCR's misreadings count), and the text OCR gave (the
    # search alone: PP-OCRv4's dictionary lacks some Traditional characters, 裏 and 滷 among them).
    as_read = [replace(image, lines=[" ".join(text for _, text, _ in image.ocr)]) for image in images]
    with psycopg.connect(dsn, autocommit=True) as conn:
        by_class, failures, skipped = evaluate(conn, images, owner, CROSS_QUERIES, truth_fold)
        by_class_read, failures_read, _ = evaluate(conn, as_read, owner, CROSS_QUERIES, truth_fold)
    report: dict[str, Any] = {
        "images": {"simplified": simplified, "traditional": traditional, "traditional_font": font},
        "ocr_exact_line_rate": {
            "simplified": exact_line_rate(images[:simplified]),
            "traditional": exact_line_rate(images[simplified:]),
        },
        "skipped_queries_without_relevant_images": skipped,
        "goal": GOAL,
        "end_to_end": summary(by_class),
        "end_to_end_misses": failures,
        "search_over_ocr_text": summary(by_class_read),
        "search_over_ocr_text_misses": failures_read,
    }
    return report


def summary(by_class: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, Any]:
    """Mean scores per method and query class, the cross-script mean, and whether it meets the goal."""
    result: dict[str, Any] = {}
    for method, classes in by_class.items():
        result[method] = {name: mean_scores(rows) for name, rows in classes.items()}
        cross = [
            row for name, rows in classes.items() if not name.startswith("simplified-only") for row in rows
        ]
        result[method]["cross-script overall"] = mean_scores(cross)
    overall = result["immich_aio"]["cross-script overall"]
    result["goal_met"] = all(overall[key] >= value for key, value in GOAL.items())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=120, help="Simplified photos (db_quality's corpus).")
    parser.add_argument("--traditional", type=int, default=120, help="Traditional photos.")
    parser.add_argument("--traditional-font", choices=sorted(TRADITIONAL_FONTS), default="noto")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dsn", help="Use this (empty) database instead of a throwaway cluster.")
    parser.add_argument("--ocr-cache", type=Path, help="A folder to reuse the OCR results between runs.")
    args = parser.parse_args()
    if args.ocr_cache:
        args.ocr_cache.mkdir(parents=True, exist_ok=True)
    if args.dsn:
        report = run(
            args.dsn, args.images, args.traditional, args.seed, args.ocr_cache, args.traditional_font
        )
    else:
        with EmbeddedPostgres() as cluster:
            report = run(
                cluster.dsn, args.images, args.traditional, args.seed, args.ocr_cache, args.traditional_font
            )
    print(json.dumps({"benchmark": "db_script_quality", **report}, ensure_ascii=False))


if __name__ == "__main__":
    main()
