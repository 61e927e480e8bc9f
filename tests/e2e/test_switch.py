"""e2e.switch: the comparisons between stages, on a stand-in library (the real run is e2e-switch)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from e2e import checks, switch
from e2e.observe import Library


class FakeLibrary:
    """What the comparisons read from a Library: OCR rows, OCR stamps, names and `ocr:` answers."""

    def __init__(self) -> None:
        self.assets = {"receipt": "a1", "sign": "a2"}
        self.rows = {"a1": {"r1", "r2"}, "a2": {"r3"}}
        self.stamps: dict[str, Any] = {"a1": "2026-12-01 10:00", "a2": "2026-12-01 10:01"}
        self.answers: dict[str, list[str]] = {q: ["a1", "a2"] for q, _, _ in checks.OCR_QUERIES}

    def ocr_rows(self) -> dict[str, set[str]]:
        return {asset: set(ids) for asset, ids in self.rows.items()}

    def ocr_done_at(self) -> dict[str, Any]:
        return dict(self.stamps)

    def name_of(self, asset_id: str) -> str:
        return next((n for n, known in self.assets.items() if known == asset_id), asset_id)

    def names(self, asset_ids: list[str]) -> list[str]:
        return [self.name_of(a) for a in asset_ids]

    def search(self, query: str) -> list[str]:
        return list(self.answers[query])


def seen_after(fake: FakeLibrary) -> switch.Seen:
    seen = switch.Seen()
    seen.ocr_rows, seen.ocr_at = switch.ocr_state(cast(Library, fake))
    return seen


def test_ocr_kept_when_rows_and_stamps_are_as_before_also_with_a_new_asset() -> None:
    fake = FakeLibrary()
    seen = seen_after(fake)
    fake.rows["a3"], fake.stamps["a3"] = {"r9"}, "2026-12-01 11:00"  # a stock stage's upload
    assert switch.ocr_kept(cast(Library, fake), seen) == "2 assets keep their ocrAt and their 3 OCR boxes"


@pytest.mark.parametrize("change", ["stamp", "rows"])
def test_ocr_run_again_is_caught_by_its_stamp_or_its_rows(change: str) -> None:
    fake = FakeLibrary()
    seen = seen_after(fake)
    if change == "stamp":
        fake.stamps["a2"] = "2026-12-01 12:00"
    else:
        fake.rows["a2"] = {"r4"}
    with pytest.raises(checks.CheckFailed, match=r"changed for \['sign'\]"):
        switch.ocr_kept(cast(Library, fake), seen)


def test_ocr_results_are_recorded_then_compared_in_order() -> None:
    fake, seen = FakeLibrary(), switch.Seen()
    assert (
        switch.same_ocr_results(cast(Library, fake), seen)
        == f"{len(checks.OCR_QUERIES)} ocr: queries recorded"
    )
    assert switch.same_ocr_results(cast(Library, fake), seen).endswith("queries answer as before")
    fake.answers["ocr:发票"] = ["a2", "a1"]
    with pytest.raises(checks.CheckFailed, match="ocr:发票"):
        switch.same_ocr_results(cast(Library, fake), seen)


def test_a_library_is_whole_when_every_table_it_had_keeps_its_rows() -> None:
    before = {"asset": 10, "ocr boxes": 43}  # a v1-series stage: no ocr_search yet
    assert switch.same_library(before, {"asset": 10, "ocr boxes": 43, "ocr_search": 10})
    assert not switch.same_library(before, {"asset": 9, "ocr boxes": 43, "ocr_search": 10})
    assert not switch.same_library(
        {**before, "ocr_search": 10}, {"asset": 10, "ocr boxes": 43, "ocr_search": 9}
    )
