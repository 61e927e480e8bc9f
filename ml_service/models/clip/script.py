"""Traditional Chinese CLIP queries in Simplified: Chinese-CLIP was trained on Simplified captions.

OpenCC converts phrase by phrase where its dictionaries have the phrase, else character by character:
`t2s` keeps the words (臺北車站 → 台北车站), `tw2sp` and `hk2s` also swap regional vocabulary
(計程車 → 出租车). Simplified text passes through unchanged.
"""

from functools import cache
from typing import Literal, get_args

import opencc

TextConversion = Literal["t2s", "tw2sp", "hk2s", "off"]
TEXT_CONVERSIONS: tuple[TextConversion, ...] = get_args(TextConversion)


@cache
def _converter(conversion: str) -> opencc.OpenCC:
    return opencc.OpenCC(conversion)


def to_simplified(text: str, conversion: TextConversion) -> str:
    """The query as the text encoder should read it under `conversion` ("off" leaves it as it is)."""
    if conversion == "off" or text.isascii():
        return text
    converted: str = _converter(conversion).convert(text)
    return converted
