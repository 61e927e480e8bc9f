"""Test photos: receipts, signs and tickets rendered with Chinese, English and mixed text (WQY Zen Hei)."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")


@dataclass(frozen=True)
class Line:
    """One line of text: its size in pixels and whether it is bold-ish (drawn with a stroke)."""

    text: str
    size: int = 44
    bold: bool = False


@dataclass(frozen=True)
class Scene:
    """A test photo: what it shows, its text lines, and the role it plays in the checks."""

    name: str
    kind: str
    lines: tuple[Line, ...]
    size: tuple[int, int] = (1080, 1440)
    paper: tuple[int, int, int] = (250, 248, 240)
    ink: tuple[int, int, int] = (25, 25, 30)
    # "locked" and "trash" scenes are moved out of the timeline before searching.
    role: str = "timeline"
    # (line, character, share of its height from the top) painted over with paper, as a sticker or a
    # scratch hides part of a sign: the OCR then misreads that character.
    smudge: tuple[int, int, float] | None = None

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def file_name(self) -> str:
        return f"{self.name}.jpg"


def lines_of(*items: str | tuple[str, int] | tuple[str, int, bool]) -> tuple[Line, ...]:
    result = []
    for item in items:
        if isinstance(item, str):
            result.append(Line(item))
        elif len(item) == 2:
            result.append(Line(item[0], item[1]))
        else:
            result.append(Line(item[0], item[1], item[2]))
    return tuple(result)


SCENES: tuple[Scene, ...] = (
    Scene(
        "receipt-invoice-title",
        "receipt",
        lines_of(
            ("增值税电子普通发票", 64, True),
            "发票代码 031002600111",
            "购买方 上海星光贸易有限公司",
            "货物名称 办公用品",
            "金额 ¥356.00",
            "开票日期 2026年03月15日",
        ),
    ),
    Scene(
        "receipt-restaurant",
        "receipt",
        lines_of(
            ("老北京炸酱面馆", 60, True),
            "炸酱面 2份 ¥56.00",
            "凉拌黄瓜 1份 ¥12.00",
            "合计 ¥68.00",
            ("如需发票请联系前台", 36),
        ),
    ),
    Scene(
        "receipt-supermarket",
        "receipt",
        lines_of(
            ("华联超市购物小票", 60, True),
            "苹果 2斤 ¥12.80",
            "牛奶 1箱 ¥59.90",
            "鸡蛋 30枚 ¥25.50",
            "应付 ¥98.20",
        ),
    ),
    Scene(
        "sign-metro",
        "sign",
        lines_of(("地铁 人民广场站", 80, True), ("Metro People's Square", 56), ("出口 Exit B", 64)),
        size=(1440, 960),
        paper=(16, 82, 160),
        ink=(255, 255, 255),
    ),
    Scene(
        "sign-cafe",
        "sign",
        lines_of(
            ("星光咖啡 Star Coffee", 72, True), "拿铁 Latte ¥32", "美式 Americano ¥28", "WIFI5G密码 88886666"
        ),
        size=(1440, 1080),
        paper=(60, 40, 30),
        ink=(250, 235, 200),
    ),
    Scene(
        "sign-parking",
        "sign",
        lines_of(("PARKING ONLY", 96, True), ("No Smoking", 64), ("Visitors 2 hours", 56)),
        size=(1440, 960),
        paper=(240, 240, 240),
        ink=(10, 60, 140),
    ),
    Scene(
        "ticket-train",
        "ticket",
        lines_of(
            ("中国铁路 火车票", 60, True),
            "上海虹桥 站 → 北京南 站",
            "G102次 08:00开",
            "二等座 05车12F号",
            "票价 ¥553.00",
        ),
        size=(1440, 900),
        paper=(200, 225, 245),
    ),
    Scene(
        "ticket-museum",
        "ticket",
        lines_of(
            ("上海博物馆 参观券", 60, True), "Shanghai Museum Admission", "2026年05月01日 上午场", "成人票 ¥0"
        ),
        size=(1440, 900),
        paper=(245, 230, 200),
    ),
    # Traditional script (Taipei): found by Simplified queries, and a Traditional query finds Simplified text.
    Scene(
        "sign-taipei-station",
        "sign",
        lines_of(("臺北車站", 88, True), ("Taipei Main Station", 56), ("南一門 South Gate 1", 56)),
        size=(1440, 960),
        paper=(20, 90, 60),
        ink=(255, 255, 255),
    ),
    # The top of 紧 hidden: PP-OCRv5 reads 请系握扶手, and ocr:请紧握扶手 must still find it (a near match).
    Scene(
        "sign-handrail",
        "sign",
        lines_of(("请紧握扶手", 80, True), ("小心台阶 Mind the step", 56)),
        size=(1440, 900),
        smudge=(0, 1, 0.6),
    ),
    Scene(
        "receipt-invoice-locked",
        "receipt",
        lines_of(("医疗门诊收费发票", 64, True), "患者 张三", "挂号费 ¥25.00", "合计 ¥25.00"),
        role="locked",
    ),
    Scene(
        "receipt-invoice-trashed",
        "receipt",
        lines_of(("出租车发票", 64, True), "车号 沪A12345", "里程 12.5公里", "金额 ¥48.00"),
        role="trash",
    ),
)


def render(scene: Scene, seed: int = 0) -> bytes:
    """Render `scene` as a JPEG the way a phone photo of it might look (slight tilt, blur, noise)."""
    if not FONT_PATH.exists():
        raise FileNotFoundError(f"{FONT_PATH} is missing; install Debian's fonts-wqy-zenhei")
    rng = random.Random(f"{scene.name}:{seed}")
    width, height = scene.size
    image = Image.new("RGB", (width, height), scene.paper)
    draw = ImageDraw.Draw(image)
    margin = width // 12
    y = height // 10
    for number, line in enumerate(scene.lines):
        font = ImageFont.truetype(str(FONT_PATH), line.size)
        draw.text(
            (margin, y), line.text, font=font, fill=scene.ink, stroke_width=2 if line.bold else 0,
            stroke_fill=scene.ink,
        )  # fmt: skip
        if scene.smudge is not None and scene.smudge[0] == number:
            _, character, share = scene.smudge
            left = margin + font.getlength(line.text[:character])
            right = left + font.getlength(line.text[character])
            draw.rectangle([left, y, right, y + line.size * share], fill=scene.paper)
        y += int(line.size * 1.9)
    if scene.kind == "receipt":
        for dash_y in (height // 10 - 30, y):
            draw.line([(margin, dash_y), (width - margin, dash_y)], fill=scene.ink, width=2)
    image = image.rotate(rng.uniform(-1.5, 1.5), resample=Image.Resampling.BICUBIC, fillcolor=scene.paper)
    image = image.filter(ImageFilter.GaussianBlur(radius=0.6))
    pixels = image.load()
    assert pixels is not None
    for _ in range(width * height // 200):
        px, py = rng.randrange(width), rng.randrange(height)
        r, g, b = pixels[px, py]  # type: ignore[misc]
        jitter = rng.randint(-25, 25)
        pixels[px, py] = (
            max(0, min(255, r + jitter)),
            max(0, min(255, g + jitter)),
            max(0, min(255, b + jitter)),
        )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def write_all(directory: Path, scenes: tuple[Scene, ...] = SCENES) -> dict[str, Path]:
    """Render every scene into `directory`; returns scene name -> file path."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for scene in scenes:
        path = directory / scene.file_name
        path.write_bytes(render(scene))
        paths[scene.name] = path
    return paths


def scenes_containing(word: str, roles: tuple[str, ...] = ("timeline",)) -> list[Scene]:
    """Scenes whose rendered text contains `word` (case-insensitive) and whose role is in `roles`."""
    return [s for s in SCENES if word.lower() in s.text.lower() and s.role in roles]
