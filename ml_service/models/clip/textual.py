"""The Chinese-CLIP text encoder and its tokenisation (cn_clip's tokenize without the trailing padding)."""

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ml_service.models.clip.base import ClipEncoder
from ml_service.models.clip.export import ExportedGraphs
from ml_service.models.clip.quantize import TEXTUAL_INT8
from ml_service.models.clip.tokenizer import token_ids

CONTEXT_LENGTH = 52
# Short and long, Chinese and English, plain and with digits and symbols, as search queries are.
PROBE_TEXTS = ("猫", "海边日落", "一只狗在草地上奔跑", "发票 合计 ¥35", "a red car")


def tokenize(text: str) -> NDArray[np.int64]:
    """cn_clip's tokenize (BERT wordpiece, [CLS]..[SEP], at most 52 tokens) without the trailing padding.

    Dropping the padding changes nothing in the result (cn_clip masks padding out of attention) and
    makes short queries several times faster to encode.
    """
    return np.ascontiguousarray(token_ids(text, CONTEXT_LENGTH))


class ClipTextualModel(ClipEncoder):
    """Chinese-CLIP text encoder."""

    task = "clip-textual"
    int8_recipe = TEXTUAL_INT8

    def predict(self, text: str) -> NDArray[np.float32]:
        return self._run(tokenize(text))

    def _graph(self, graphs: ExportedGraphs) -> Path:
        return graphs.textual

    def _probe_inputs(self) -> list[NDArray[Any]]:
        return [tokenize(text) for text in PROBE_TEXTS]

    def _encode_torch(self, model: Any, batch: Any) -> Any:
        return model.encode_text(batch)
