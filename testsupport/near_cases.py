"""Near-match cases (issue 27): what OCR stored for a photo, what it says, whether a query finds it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NearCase:
    """A photo whose OCR text is `read_as` while it really says `says`; `query` must find it or must not."""

    name: str
    query: str
    read_as: str
    says: str
    found: bool


CASES = (
    NearCase("latin glued", "Maple Leaf", "MapleLeaf", "Maple Leaf", True),
    NearCase("latin letter dropped", "Maple Leaf", "Mapl Leaf", "Maple Leaf", True),
    NearCase("latin letter misread", "Maple Leaf", "MapIe Leaf", "Maple Leaf", True),
    NearCase("latin glued and dropped", "Maple Leaf", "MAPLLEAF", "Maple Leaf", True),
    NearCase("latin letter added", "Parking", "Parkking", "Parking", True),
    NearCase("latin word of a glued query", "MapleLeaf", "Mapl Leaf", "Maple Leaf", True),
    NearCase("cjk last character misread", "电梯内吸烟", "请勿在电梯内吸姻", "请勿在电梯内吸烟", True),
    NearCase("cjk first character misread", "电梯内吸烟", "请勿在屯梯内吸烟", "请勿在电梯内吸烟", True),
    NearCase("cjk last character dropped", "电梯内吸烟", "电梯内吸 违者罚款", "电梯内吸烟 违者罚款", True),
    NearCase(
        "13-character notice",
        "进站时请站在黄色安全线以内",
        "进站时请站在黄色安金线以内",
        "进站时请站在黄色安全线以内",
        True,
    ),
    NearCase(
        "15-character notice, two misreads apart",
        "列车进站时请站在黄色安全线以内",
        "列车进站吋请站在黄色安全钱以内",
        "列车进站时请站在黄色安全线以内",
        True,
    ),
    NearCase("number", "35号", "36号", "36号", False),
    NearCase("price", "¥35.00", "¥36.00", "¥36.00", False),
    NearCase("short word", "Exit", "Edit", "Edit", False),
    NearCase("code", "KBXQZ7", "KBXQY7", "KBXQY7", False),
    NearCase("latin, two letters", "Maple", "Mabie", "Mabie", False),
    NearCase("cjk end of a 4-character run", "窦性心律", "实性心律", "实性心律", False),
)
