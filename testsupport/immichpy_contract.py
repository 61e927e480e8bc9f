"""Validates the gateway's traffic with the generated models of an `immichpy` wheel (Immich's API 3.2/3.3).

Usage: PYTHONPATH=<unpacked immichpy wheel> python -m testsupport.immichpy_contract TRAFFIC.json

TRAFFIC.json holds {"requests": [[endpoint, body], ...], "replies": [body, ...]}: what the gateway sent to
Immich (each body must be a valid MetadataSearchDto / SmartSearchDto, no key unknown to the API) and what
it answered its callers (each a valid SearchResponseDto). Prints one line per problem; exits 1 if any.
Run in its own process per wheel: two releases of one package cannot be imported side by side.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from immichpy.client.generated.models.metadata_search_dto import (  # type: ignore[import-not-found]
    MetadataSearchDto,
)
from immichpy.client.generated.models.search_filter import SearchFilter  # type: ignore[import-not-found]
from immichpy.client.generated.models.search_response_dto import (  # type: ignore[import-not-found]
    SearchResponseDto,
)
from immichpy.client.generated.models.smart_search_dto import SmartSearchDto  # type: ignore[import-not-found]

MODELS = {"metadata": MetadataSearchDto, "smart": SmartSearchDto}


def unknown_keys(model: Any, body: dict[str, Any]) -> list[str]:
    """Keys of `body` that the generated model does not list (its name-mangled `__properties`)."""
    known = set(getattr(model, "_" + model.__name__ + "__properties"))
    return sorted(set(body) - known)


def problems(traffic: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for endpoint, body in traffic["requests"]:
        model = MODELS[endpoint]
        extra = unknown_keys(model, body)
        if extra:
            found.append(f"{endpoint} request has keys the API does not know: {extra}: {body}")
        if isinstance(body.get("filter"), dict):
            extra = unknown_keys(SearchFilter, body["filter"])
            if extra:
                found.append(f"{endpoint} request's filter has unknown keys {extra}: {body}")
        try:
            model.from_dict(body)
        except Exception as error:  # pydantic's ValidationError and the generator's ValueErrors alike
            found.append(f"{endpoint} request invalid: {error}: {body}")
    for reply in traffic["replies"]:
        try:
            SearchResponseDto.from_dict(reply)
        except Exception as error:
            found.append(f"reply invalid: {error}: {reply}")
    return found


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as file:
        traffic = json.load(file)
    found = problems(traffic)
    for line in found:
        print(line)
    print(f"{len(traffic['requests'])} requests, {len(traffic['replies'])} replies, {len(found)} problems")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
