"""cn_clip's BERT wordpiece tokenizer without cn_clip's package import, which pulls in torch.

`cn_clip.clip` imports its model and utils (torch, torchvision) before anything else, so a torch-free
image could not even tokenize a query. The tokenizer itself (`cn_clip/clip/bert_tokenizer.py`, with
its `vocab.txt`) needs only `six`: it is loaded from cn_clip's installed files by path.
"""

import importlib.util
import threading
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ml_service.models.errors import NotServable

_loading = threading.Lock()


def cn_clip_folder() -> Path:
    """Where the cn_clip package is installed (found, not imported)."""
    spec = importlib.util.find_spec("cn_clip")
    if spec is None or not spec.submodule_search_locations:
        raise NotServable("cn_clip is not installed: the Chinese-CLIP tokenizer comes from it")
    return Path(next(iter(spec.submodule_search_locations))) / "clip"


@cache
def _module() -> ModuleType:
    path = cn_clip_folder() / "bert_tokenizer.py"
    spec = importlib.util.spec_from_file_location("ml_service_cn_clip_bert_tokenizer", path)
    if spec is None or spec.loader is None:
        raise NotServable(f"cannot load cn_clip's tokenizer from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _tokenizer() -> Any:
    with _loading:
        return _module().FullTokenizer()


def token_ids(text: str, context_length: int) -> NDArray[np.int64]:
    """[CLS], the text's wordpiece ids (at most context_length - 2), [SEP]: cn_clip's tokens, unpadded."""
    tokenizer = _tokenizer()
    pieces = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))[: context_length - 2]
    ids = [tokenizer.vocab["[CLS]"], *pieces, tokenizer.vocab["[SEP]"]]
    return np.asarray([ids], dtype=np.int64)
