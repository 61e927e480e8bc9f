"""A seeded corpus of hard, photo-like OCR images with their gold lines, shared by the tests and bench/."""

from __future__ import annotations

import io
import random
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import opencc
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from testsupport.ocr_scoring import rebuilt_order
from testsupport.synthetic import ocr_line

CANVAS = (1200, 900)
CLASSES = ("clean", "perspective", "blur", "jpeg40", "low_light", "small", "textured", "vertical")
SIMPLIFIED, TRADITIONAL = "simplified", "traditional"
# Common characters PP-OCRv5 mobile has been seen to drop on clean crops: every few images carry one.
SINGLE_CHARACTER_LINES = ("生鲜食品", "人民路", "食堂", "生日快乐", "人口", "生活超市", "美食广场", "人行道")
JPEG_QUALITY, HARD_JPEG_QUALITY = 90, 40


@dataclass(frozen=True)
class CorpusFont:
    """A Debian CJK font file and the face index to use for each script."""

    package: str
    file: str
    simplified: int
    traditional: int


FONTS = (
    CorpusFont("fonts-wqy-zenhei", "wqy-zenhei.ttc", 0, 0),
    CorpusFont("fonts-noto-cjk", "NotoSansCJK-Regular.ttc", 2, 3),
    CorpusFont("fonts-noto-cjk", "NotoSerifCJK-Regular.ttc", 2, 3),
    CorpusFont("fonts-arphic-ukai", "ukai.ttc", 0, 2),
    CorpusFont("fonts-arphic-uming", "uming.ttc", 0, 2),
)


@dataclass(frozen=True)
class CorpusImage:
    """One rendered image: its class, script, font, the gold lines in reading order, and the JPEG bytes."""

    name: str
    kind: str
    script: str
    font: str
    lines: tuple[str, ...]
    jpeg: bytes


@cache
def font_files() -> dict[str, Path]:
    """Where fontconfig has each corpus font file (by file name), for the fonts installed here."""
    listing = subprocess.run(["fc-list", ":", "file"], capture_output=True, text=True, check=True).stdout
    paths = [Path(line.split(":")[0].strip()) for line in listing.splitlines() if line.strip()]
    wanted = {font.file for font in FONTS}
    return {path.name: path for path in paths if path.name in wanted}


def missing_fonts() -> list[str]:
    """Debian packages whose corpus font is not installed (install.sh installs them all)."""
    found = font_files()
    return sorted({font.package for font in FONTS if font.file not in found})


@cache
def _face(file: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_files()[file]), size, index=index)


@cache
def _glyph(file: str, index: int, ch: str) -> bytes:
    picture = Image.new("L", (40, 40))
    ImageDraw.Draw(picture).text((2, 2), ch, font=_face(file, index, 32), fill=255)
    return picture.tobytes()


def covers(file: str, index: int, text: str) -> bool:
    """True when the face has a glyph of its own for every character (no .notdef box)."""
    notdef = _glyph(file, index, "\U0010fffd")
    return all(ch.isspace() or _glyph(file, index, ch) != notdef for ch in text)


@cache
def _to_traditional() -> opencc.OpenCC:
    return opencc.OpenCC("s2t")


def _line(rng: random.Random, script: str, longest: int) -> str:
    text = rng.choice(SINGLE_CHARACTER_LINES) if rng.random() < 0.2 else ocr_line(rng)
    text = text.strip()[:longest].strip()
    return str(_to_traditional().convert(text)) if script == TRADITIONAL else text


def _han(text: str) -> bool:
    return all("\u4e00" <= ch <= "\u9fff" for ch in text)


def _lines(
    rng: random.Random, script: str, font: CorpusFont, count: int, longest: int, han_only: bool = False
) -> list[str]:
    index = font.traditional if script == TRADITIONAL else font.simplified
    chosen: list[str] = []
    while len(chosen) < count:
        text = _line(rng, script, longest)
        if han_only:
            text = text.replace(" ", "")
            if not _han(text):
                continue
        if len(text.replace(" ", "")) >= 2 and text not in chosen and covers(font.file, index, text):
            chosen.append(text)
    return chosen


def _smooth_noise(rng: np.random.Generator, cells: int, size: tuple[int, int]) -> NDArray[np.float32]:
    coarse = rng.random((cells, cells, 3)).astype(np.float32)
    return np.asarray(cv2.resize(coarse, size, interpolation=cv2.INTER_CUBIC), dtype=np.float32)


def _paper(rng: np.random.Generator) -> NDArray[np.float32]:
    """Slightly tinted paper, a soft light gradient across it and a little grain."""
    width, height = CANVAS
    tint = rng.uniform(220, 250, 3).astype(np.float32)
    ramp = np.linspace(rng.uniform(0.9, 1.0), rng.uniform(0.9, 1.0), width, dtype=np.float32)
    base = tint[None, None, :] * ramp[None, :, None] * np.ones((height, 1, 1), dtype=np.float32)
    return np.asarray(base + rng.normal(0, 3, (height, width, 3)), dtype=np.float32)


def _photo(rng: np.random.Generator) -> NDArray[np.float32]:
    """A photo-like background: colour fields at several scales, blurred blobs, edges and grain."""
    width, height = CANVAS
    layers = sum(w * _smooth_noise(rng, c, CANVAS) for c, w in ((3, 0.5), (9, 0.3), (40, 0.2)))
    colour = rng.uniform(40, 215, 3).astype(np.float32)
    image = np.asarray(layers * 255 * 0.6 + colour * 0.4, dtype=np.float32)
    canvas = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(canvas)
    py = random.Random(int(rng.integers(1 << 30)))
    for _ in range(py.randint(6, 14)):
        x, y = py.randrange(width), py.randrange(height)
        radius = py.randint(20, 160)
        fill = tuple(py.randrange(256) for _ in range(3))
        pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
    for _ in range(py.randint(3, 8)):
        pen.line(
            (py.randrange(width), py.randrange(height), py.randrange(width), py.randrange(height)),
            fill=tuple(py.randrange(256) for _ in range(3)),
            width=py.randint(2, 9),
        )
    blurred = np.asarray(canvas.filter(ImageFilter.GaussianBlur(py.uniform(3, 8))), dtype=np.float32)
    return np.asarray(blurred + rng.normal(0, 6, blurred.shape), dtype=np.float32)


def _ink_for(
    background: NDArray[np.float32], box: tuple[int, int, int, int], rng: random.Random
) -> tuple[int, ...]:
    """Dark ink on a light patch and light ink on a dark one, so the text stays legible."""
    x0, y0, x1, y1 = box
    patch = background[max(0, y0) : max(y0 + 1, y1), max(0, x0) : max(x0 + 1, x1)]
    luminance = float(patch.mean()) if patch.size else 128.0
    if luminance > 128:
        return tuple(rng.randint(0, 60) for _ in range(3))
    return tuple(rng.randint(200, 255) for _ in range(3))


def _horizontal(
    rng: random.Random,
    background: NDArray[np.float32],
    lines: list[str],
    face: ImageFont.FreeTypeFont,
    size: int,
) -> tuple[Image.Image, NDArray[np.float32]]:
    """The lines drawn on the background, and each line's four corners (clockwise from top-left)."""
    width, height = CANVAS
    canvas = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(canvas)
    corners = []
    step = int(size * rng.uniform(1.8, 2.4))
    top = rng.randint(
        int(height * 0.2), max(int(height * 0.2) + 1, height - int(height * 0.2) - step * len(lines))
    )
    for row, text in enumerate(lines):
        text_width = int(pen.textlength(text, font=face))
        left = rng.randint(int(width * 0.12), max(int(width * 0.12) + 1, int(width * 0.88) - text_width))
        y = top + row * step
        ink = _ink_for(background, (left, y, left + text_width, y + size), rng)
        pen.text((left, y), text, font=face, fill=ink)
        right, bottom = left + text_width, y + size
        corners.append([[left, y], [right, y], [right, bottom], [left, bottom]])
    return canvas, np.array(corners, dtype=np.float32)


def _vertical(
    rng: random.Random, background: NDArray[np.float32], text: str, face: ImageFont.FreeTypeFont, size: int
) -> Image.Image:
    width, height = CANVAS
    canvas = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(canvas)
    glyphs = [ch for ch in text if not ch.isspace()]
    step = int(size * 1.15)
    left = rng.randint(int(width * 0.3), int(width * 0.7))
    top = rng.randint(
        int(height * 0.08), max(int(height * 0.08) + 1, height - int(height * 0.08) - step * len(glyphs))
    )
    ink = _ink_for(background, (left, top, left + size, top + step * len(glyphs)), rng)
    for row, ch in enumerate(glyphs):
        pen.text(
            (left + (size - pen.textlength(ch, font=face)) / 2, top + row * step), ch, font=face, fill=ink
        )
    return canvas


def _warp(
    image: Image.Image, rng: random.Random, boxes: NDArray[np.float32]
) -> tuple[Image.Image, NDArray[np.float32]]:
    """Rotation within ±15° and a perspective pull of each corner by up to 6 % of the side; boxes follow."""
    width, height = image.size
    array = np.asarray(image)
    angle = rng.uniform(4, 15) * rng.choice((-1, 1))
    rotation = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    rotated = cv2.warpAffine(array, rotation, (width, height), borderMode=cv2.BORDER_REFLECT)
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    pulled = corners + np.array(
        [[rng.uniform(-0.06, 0.06) * width, rng.uniform(-0.06, 0.06) * height] for _ in range(4)],
        dtype=np.float32,
    )
    matrix = cv2.getPerspectiveTransform(corners, pulled)
    warped = cv2.warpPerspective(rotated, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
    turned = cv2.transform(boxes.reshape(-1, 1, 2), rotation)
    moved = cv2.perspectiveTransform(turned.astype(np.float32), matrix)
    return Image.fromarray(warped), np.asarray(moved, dtype=np.float32).reshape(-1, 4, 2)


def _dim(image: Image.Image, rng: random.Random) -> Image.Image:
    """Low light and low contrast: the range squeezed into a dark band, then sensor-like noise."""
    array = np.asarray(image, dtype=np.float32)
    contrast, floor = rng.uniform(0.25, 0.4), rng.uniform(15, 40)
    dark = floor + (array - array.mean()) * contrast + array.mean() * rng.uniform(0.25, 0.4)
    noisy = dark + np.random.default_rng(rng.randrange(1 << 30)).normal(0, 4, array.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _encode(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def render(kind: str, script: str, font: CorpusFont, seed: int) -> CorpusImage:
    """One corpus image of a class, fully determined by its arguments."""
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    index = font.traditional if script == TRADITIONAL else font.simplified
    size = rng.randint(14, 18) if kind == "small" else rng.randint(30, 48)
    face = _face(font.file, index, size)
    background = _photo(noise) if kind == "textured" else _paper(noise)
    if kind == "vertical":
        # Vertical print is Han characters; digits and Latin in a column are set sideways, a case apart.
        lines = _lines(rng, script, font, 1, 8, han_only=True)
        image = _vertical(rng, background, lines[0], face, size)
    else:
        lines = _lines(rng, script, font, rng.randint(3, 5), 14 if kind != "small" else 20)
        image, boxes = _horizontal(rng, background, lines, face, size)
    if kind == "perspective":
        image, boxes = _warp(image, rng, boxes)
        # Turned lines may swap places top to bottom: the gold order is the reading order of the result.
        scale = np.array(CANVAS, dtype=np.float32)
        lines = [lines[i] for i in rebuilt_order((boxes / scale).reshape(-1).tolist())]
    elif kind == "blur":
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(1.2, 2.0)))
    elif kind == "low_light":
        image = _dim(image, rng)
    quality = HARD_JPEG_QUALITY if kind == "jpeg40" else JPEG_QUALITY
    name = f"{kind}-{script[:4]}-{Path(font.file).stem}-{seed}"
    family = str(_face(font.file, index, 12).getname()[0] or font.file)
    return CorpusImage(name, kind, script, family, tuple(lines), _encode(image, quality))


def corpus(per_class: int = 12, seed: int = 2026, traditional_every: int = 3) -> list[CorpusImage]:
    """`per_class` images of every class; every `traditional_every`-th one is Traditional, fonts rotate."""
    images = []
    for class_no, kind in enumerate(CLASSES):
        for item in range(per_class):
            number = class_no * per_class + item
            script = TRADITIONAL if item % traditional_every == 1 else SIMPLIFIED
            font = FONTS[number % len(FONTS)]
            images.append(render(kind, script, font, seed * 1000 + number))
    return images
