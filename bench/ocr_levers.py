"""OCR speed levers, one at a time, in-process on the hard corpus: images/s, CPU s/image and 1 − CER.

Each configuration loads PP-OCRv5_mobile with its own thread count, ONNX Runtime thread spinning and
recognition batch size, then reads the corpus with `--workers` requests at once (as the service's
IMMICH_AIO_ML_MAX_CONCURRENT does). A lever is kept only when it pays in this table and in the
side-by-side run (bench/ocr_side_by_side.py); accuracy is printed so none pays by reading worse.

    python -m bench.ocr_levers [--per-class 3] [--workers 1,2] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ml_service.models.ocr import PP_OCRV5_MOBILE, OcrModel, OcrOptions, shipped_models
from testsupport.ocr_corpus import CorpusImage, corpus
from testsupport.ocr_scoring import Scorecard


@dataclass(frozen=True)
class Config:
    threads: int
    spinning: bool
    rec_batch: int

    @property
    def label(self) -> str:
        return (
            f"threads={self.threads} spinning={'on' if self.spinning else 'off'} rec_batch={self.rec_batch}"
        )


CONFIGS = (
    Config(0, True, 6),  # ONNX Runtime's defaults and rapidocr's batch: where the service started
    Config(0, False, 6),
    Config(1, False, 6),
    Config(1, False, 1),
    Config(0, False, 1),
    Config(1, False, 16),
)


def run(config: Config, images: list[CorpusImage], workers: int) -> dict[str, Any]:
    files = shipped_models()[PP_OCRV5_MOBILE]
    model = OcrModel(files, threads=config.threads, spinning=config.spinning, rec_batch=config.rec_batch)
    model.load()
    pictures = [Image.open(io.BytesIO(image.jpeg)).convert("RGB") for image in images]
    model.predict(pictures[0], OcrOptions())
    card = Scorecard()
    cpu, started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda picture: model.predict(picture, OcrOptions()), pictures))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    for image, result in zip(images, results, strict=True):
        card.add((image.kind,), image.lines, result.text, result.box)
    model.unload()
    return {
        "config": config.label,
        "workers": workers,
        "images_per_s": round(len(images) / wall, 3),
        "cpu_s_per_image": round(cpu / len(images), 3),
        "char_accuracy": card.figures()["all"]["char_accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--per-class", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="requests at once, comma separated")
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args()
    images = corpus(per_class=args.per_class)
    rows = []
    for workers in (int(w) for w in args.workers.split(",")):
        for config in CONFIGS:
            row = run(config, images, workers)
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"benchmark": "ocr_levers", "images": len(images), "cpus": os.cpu_count(), "rows": rows}
    result["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    if args.json:
        with open(args.json, "w") as sink:
            json.dump(result, sink, indent=2)


if __name__ == "__main__":
    main()
