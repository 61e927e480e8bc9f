"""Writes install.sql's Traditional -> Simplified character map from OpenCC's dictionaries (maintainers).

    python -m db_extension.fold_map          # rewrite the generated section of db_extension/sql/install.sql
    python -m db_extension.fold_map --check  # exit 1 when the section differs from what OpenCC gives

Every character of the CJK blocks U+3400..U+9FFF that OpenCC's t2s, tw2s or hk2s conversion turns into a
single different character is mapped (the first of them that does, in that order): Traditional forms and
the regional variants (臺 -> 台, 裏/裡 -> 里, 綫/線 -> 线). Compatibility ideographs need no entry: the SQL
folds them with NFKC first. Only maintainers need OpenCC (the `dev` extra); the map ships inside the SQL.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata
from pathlib import Path

FIRST, LAST = 0x3400, 0x9FFF
CONFIGS = ("t2s", "tw2s", "hk2s")
BEGIN = "-- BEGIN GENERATED fold map"
END = "-- END GENERATED fold map"
INSTALL_SQL = Path(__file__).with_name("sql") / "install.sql"


def character_map() -> dict[int, int]:
    """Code point -> Simplified code point, from OpenCC's own conversions, one character at a time."""
    # OpenCC is a maintainers' dependency (the `dev` extra); nothing at run time imports this module.
    import opencc

    converters = [opencc.OpenCC(config) for config in CONFIGS]
    mapping: dict[int, int] = {}
    for code in range(FIRST, LAST + 1):
        character = chr(code)
        for converter in converters:
            converted = converter.convert(character)
            if len(converted) == 1 and converted != character:
                mapping[code] = ord(converted)
                break
    return mapping


def section(mapping: dict[int, int], version: str) -> str:
    """The SQL between the markers: the lookup array, and the character class of every mapped character."""
    table = ",".join(str(mapping.get(code, 0)) for code in range(FIRST, LAST + 1))
    characters = "".join(chr(code) for code in sorted(mapping))
    return "\n".join(
        [
            f"{BEGIN}: {len(mapping)} characters from OpenCC {version} ({', '.join(CONFIGS)}; Apache-2.0),",
            "-- written by: python -m db_extension.fold_map (do not edit by hand).",
            f"-- Element i of the array: the Simplified code point of U+{FIRST:04X} + i - 1, or 0 for none.",
            "CREATE OR REPLACE FUNCTION immich_aio.fold_table() RETURNS integer[]",
            "  LANGUAGE sql IMMUTABLE PARALLEL SAFE",
            f"  RETURN '{{{table}}}'::integer[];",
            "CREATE OR REPLACE FUNCTION immich_aio.traditional_class() RETURNS text",
            "  LANGUAGE sql IMMUTABLE PARALLEL SAFE",
            f"  RETURN '[{characters}]';",
            END,
        ]
    )


def rewrite(text: str, generated: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + generated + text[end:]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="Only compare; exit 1 when it differs.")
    args = parser.parse_args()
    current = INSTALL_SQL.read_text(encoding="utf-8")
    updated = rewrite(current, section(character_map(), metadata.version("opencc")))
    if args.check:
        sys.exit(0 if updated == current else 1)
    INSTALL_SQL.write_text(updated, encoding="utf-8")


if __name__ == "__main__":
    main()
