"""Generate and bulk-load synthetic Immich libraries (assets, CLIP embeddings, OCR boxes) for benchmarks."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

# Words seen on signs, receipts, menus, screenshots and documents. Zipf-like use: early words are common.
WORDS = [
    "出口",
    "入口",
    "发票",
    "停车场",
    "营业时间",
    "欢迎光临",
    "价格",
    "合计",
    "日期",
    "地址",
    "电话",
    "会员",
    "优惠",
    "打折",
    "促销",
    "特价",
    "新品",
    "推荐",
    "奶茶",
    "咖啡",
    "绿茶",
    "红茶",
    "果汁",
    "啤酒",
    "米饭",
    "面条",
    "饺子",
    "包子",
    "鸡蛋饼",
    "鸡蛋面",
    "煎饼果子",
    "火锅",
    "烧烤",
    "麻辣烫",
    "牛肉面",
    "小笼包",
    "豆浆",
    "油条",
    "蛋糕",
    "面包",
    "水果",
    "超市",
    "便利店",
    "药店",
    "医院",
    "学校",
    "银行",
    "邮局",
    "酒店",
    "机场",
    "地铁站",
    "公交站",
    "火车站",
    "上海南站",
    "上海西站",
    "北京西站",
    "广州南站",
    "深圳北站",
    "候车室",
    "售票处",
    "检票口",
    "洗手间",
    "电梯",
    "楼梯",
    "安全出口",
    "禁止吸烟",
    "小心地滑",
    "请勿停车",
    "注意安全",
    "施工中",
    "暂停营业",
    "正在装修",
    "免费",
    "无线网络",
    "密码",
    "充电",
    "手机",
    "电脑",
    "身份证",
    "护照",
    "驾驶证",
    "合同",
    "收据",
    "报销",
    "审批",
    "会议",
    "纪要",
    "通知",
    "公告",
    "考试",
    "成绩",
    "课程表",
    "作业",
    "图书馆",
    "博物馆",
    "公园",
    "景区",
    "门票",
    "导览",
    "说明书",
    "保修卡",
    "快递",
    "包裹",
    "签收",
    "订单",
    "编号",
    "客服",
    "投诉",
    "退款",
    "积分",
    "余额",
    "账单",
    "生日快乐",
    "新年快乐",
    "恭喜发财",
    "一帆风顺",
    "万事如意",
    "天天向上",
    "好好学习",
    "春节",
    "中秋",
    "国庆",
    "端午",
    "元宵",
]
LATIN = [
    "WIFI",
    "5G",
    "VIP",
    "OK",
    "Exit",
    "Open",
    "Closed",
    "Sale",
    "Menu",
    "Coffee",
    "Tea",
    "Hotel",
    "Bank",
    "Taxi",
    "Metro",
    "Parking",
    "Free",
    "Total",
]
UNITS = ["元", "号", "楼", "层", "室", "分", "米", "公斤", "折"]


def zipf_choice(rng: random.Random, items: list[str] | tuple[str, ...], skew: float = 1.1) -> str:
    """Pick an item with probability roughly proportional to 1/rank^skew."""
    weights = _weights(len(items), skew)
    return rng.choices(items, cum_weights=weights)[0]


_WEIGHT_CACHE: dict[tuple[int, float], list[float]] = {}


def _weights(count: int, skew: float) -> list[float]:
    key = (count, skew)
    if key not in _WEIGHT_CACHE:
        total = 0.0
        cumulative = []
        for rank in range(1, count + 1):
            total += 1.0 / rank**skew
            cumulative.append(total)
        _WEIGHT_CACHE[key] = cumulative
    return _WEIGHT_CACHE[key]


def ocr_line(rng: random.Random) -> str:
    """One line of sign/receipt-like text: words, sometimes numbers, prices, Latin."""
    parts = []
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        if roll < 0.65:
            parts.append(zipf_choice(rng, WORDS))
        elif roll < 0.8:
            parts.append(f"{rng.randint(1, 999)}{rng.choice(UNITS)}")
        elif roll < 0.9:
            parts.append(f"¥{rng.randint(1, 500)}.{rng.randint(0, 99):02d}")
        else:
            parts.append(rng.choice(LATIN) + (str(rng.randint(1, 9)) if rng.random() < 0.3 else ""))
    return rng.choice(["", " "]).join(parts)


@dataclass
class SyntheticLibrary:
    """What was loaded: ids of the users and how many rows went where, with timings."""

    users: list[str]
    assets: int
    ocr_assets: int
    ocr_boxes: int
    timings: dict[str, float] = field(default_factory=dict)


def load_library(
    conn: Any,
    *,
    assets: int,
    ocr_fraction: float = 0.5,
    seed: int = 1,
    clusters: int = 256,
    embeddings: bool = True,
) -> SyntheticLibrary:
    """Bulk-load `assets` assets for a few users: 512-d unit embeddings around `clusters` centres
    (generated server-side) and 1-5 OCR boxes for `ocr_fraction` of the assets.

    Call before installing immich-aio (so the install's backfill is measured separately) and before
    creating the HNSW index (building it after loading is what a restore does, and is faster).
    """
    rng = random.Random(seed)
    timings: dict[str, float] = {}
    users = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(4)]
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO \"user\" (id, email) SELECT u, u::text || '@example.com' FROM unnest(%s::uuid[]) u",
            (users,),
        )
        started = time.perf_counter()
        # 90% of assets belong to the first (searching) user; a few are trashed, archived, locked or hidden.
        cur.execute(
            """
            INSERT INTO asset (id, "ownerId", visibility, "deletedAt", "fileCreatedAt")
            SELECT gen_random_uuid(),
                   (%(users)s::uuid[])[CASE WHEN g %% 10 = 0 THEN 2 + g %% 3 ELSE 1 END],
                   (CASE WHEN g %% 50 = 1 THEN 'archive' WHEN g %% 97 = 2 THEN 'locked'
                         WHEN g %% 89 = 3 THEN 'hidden' ELSE 'timeline' END)::asset_visibility_enum,
                   CASE WHEN g %% 83 = 4 THEN now() END,
                   now() - make_interval(secs => g)
            FROM generate_series(1, %(n)s) AS g
            """,
            {"users": users, "n": assets},
        )
        timings["assets_s"] = time.perf_counter() - started
        started = time.perf_counter()
        cur.execute("SELECT setseed(%s)", (seed / 1000.0,))
        if not embeddings:
            clusters = 0
        cur.execute(
            """
            CREATE TEMP TABLE centre AS
            SELECT c AS id, array_agg(random() - 0.5) AS v
            FROM generate_series(0, %(k)s - 1) c, generate_series(1, 512) d GROUP BY c
            """,
            {"k": clusters},
        )
        cur.execute(
            """
            INSERT INTO smart_search ("assetId", embedding)
            -- no rows when clusters = 0 (embeddings not wanted)
            SELECT a.id, l2_normalize((
                     SELECT array_agg(centre.v[d] + (random() - 0.5) * 0.8 ORDER BY d)
                     FROM generate_series(1, 512) d
                     WHERE a.id IS NOT NULL)::vector)
            FROM asset a
            JOIN centre ON centre.id = abs(hashtext(a.id::text)) %% %(k)s
            """,
            {"k": clusters},
        )
        timings["embeddings_s"] = time.perf_counter() - started
        started = time.perf_counter()
        ids = [row[0] for row in cur.execute("SELECT id FROM asset ORDER BY id")]
        ocr_assets = 0
        boxes = 0
        with cur.copy(
            'COPY asset_ocr ("assetId", x1, y1, x2, y2, x3, y3, x4, y4, "boxScore", "textScore", text) '
            "FROM STDIN"
        ) as copy:
            for asset_id in ids:
                if rng.random() >= ocr_fraction:
                    continue
                ocr_assets += 1
                top = 0.02
                for line_number in range(rng.randint(1, 5)):
                    height = 0.12 if line_number == 0 and rng.random() < 0.5 else 0.04
                    copy.write_row(
                        (
                            asset_id,
                            0.1,
                            top,
                            0.9,
                            top,
                            0.9,
                            top + height,
                            0.1,
                            top + height,
                            0.9,
                            0.95,
                            ocr_line(rng),
                        )
                    )
                    top += height + 0.01
                    boxes += 1
        timings["ocr_rows_s"] = time.perf_counter() - started
    conn.commit()
    return SyntheticLibrary(
        users=users, assets=assets, ocr_assets=ocr_assets, ocr_boxes=boxes, timings=timings
    )
