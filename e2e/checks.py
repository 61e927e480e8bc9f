"""The end-to-end checks: what a self-hoster does with Immich, and what must then be true.

Each check acts through Immich's REST API and observes Immich from outside through a Library
(e2e.observe): the API, read-only queries on the tables Immich owns, and its log.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import opencc

from e2e import images
from e2e.images import Scene
from e2e.immich_api import ImmichError
from e2e.observe import Library
from e2e.report import Report
from e2e.supervisor import wait_until

ADMIN_EMAIL = "admin@e2e.immich-aio.test"
ADMIN_PASSWORD = "e2e-password-7"
PIN_CODE = "246810"

# (query, scene expected first, scenes that must all be in the results) for `ocr:` searches.
OCR_QUERIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ocr:发票", "receipt-invoice-title", ("receipt-invoice-title", "receipt-restaurant")),
    ("ocr:拿铁", "sign-cafe", ("sign-cafe",)),
    ("ocr:PARKING", "sign-parking", ("sign-parking",)),
    ("ocr:虹桥", "ticket-train", ("ticket-train",)),
    ("OCR：人民广场", "sign-metro", ("sign-metro",)),
)
# Queries that would match the locked or trashed receipts if visibility rules were broken.
HIDDEN_PROBES = ("ocr:发票", "发票", "ocr:出租车", "出租车发票", "ocr:医疗", "医疗门诊收费发票")
OUTAGE_SCENE = Scene(
    "sign-outage",
    "sign",
    images.lines_of(("停电通知 Power Outage", 72, True), "明日 09:00 至 12:00", "Building B 二号楼"),
    size=(1440, 900),
    paper=(255, 240, 200),
)


class CheckFailed(AssertionError):
    """An end-to-end expectation did not hold; the message says what was seen."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def set_up_admin(library: Library, ml_url: str, clip_model: str) -> None:
    library.client.admin_sign_up(ADMIN_EMAIL, ADMIN_PASSWORD, "E2E Admin")
    library.client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    library.client.change_password(ADMIN_PASSWORD, ADMIN_PASSWORD)
    library.client.finish_onboarding()
    config = library.client.configure_machine_learning(ml_url, clip_model)
    ml = config["machineLearning"]
    ml["availabilityChecks"] = {"enabled": True, "timeout": 2000, "interval": 3000}
    config = library.client.update_system_config(config)
    expect(config["machineLearning"]["clip"]["modelName"] == clip_model, "Immich did not keep the CLIP model")
    ocr = config["machineLearning"].get("ocr")
    expect(ocr is None or ocr["enabled"] is True, "Immich did not keep OCR enabled")


def upload_all(library: Library, image_dir: Path, report: Report) -> None:
    paths = images.write_all(image_dir)
    per_image = []
    for scene in images.SCENES:
        started = time.monotonic()
        answer = library.client.upload(paths[scene.name])
        per_image.append(time.monotonic() - started)
        expect(answer["status"] == "created", f"upload of {scene.name} answered {answer}")
        library.assets[scene.name] = str(answer["id"])
    report.timing("upload_total", sum(per_image))
    report.timing("upload_per_image_mean", statistics.fmean(per_image))


def check_ocr_text(library: Library) -> str:
    """Immich's OCR rows (made by ml_service through Immich's own job) carry each scene's key text.

    Compared in one script, as the search compares: PP-OCRv5 reads some characters in their Traditional
    form (税 as 稅), which the index folds back.
    """
    to_simplified = opencc.OpenCC("t2s")
    missing = []
    for scene in images.SCENES:
        if scene.smudge is not None:
            continue  # misread on purpose: check_near_match
        found = "".join(row["text"] for row in library.client.asset_ocr(library.assets[scene.name]))
        first_line = scene.lines[0].text.replace(" ", "")
        if to_simplified.convert(first_line.lower()) not in to_simplified.convert(
            found.replace(" ", "").lower()
        ):
            missing.append(f"{scene.name}: wanted {first_line!r}, OCR has {found[:80]!r}")
    expect(not missing, "OCR text missing: " + "; ".join(missing))
    return f"{len(images.SCENES)} assets: title line recovered exactly"


LOCKED_FOLDER_SINCE = (1, 133, 0)


def hide_assets(library: Library) -> None:
    """Move the 'locked' scene to the locked folder and the 'trash' scene to the trash.

    The session is locked again afterwards: an unlocked (PIN-elevated) session may see locked assets
    by Immich's design, a normal one never. Before v1.133 there is no locked folder: the 'locked' scene
    goes to the trash too, so that either way both leave the timeline and search.
    """
    locked = [library.assets[s.name] for s in images.SCENES if s.role == "locked"]
    trashed = [library.assets[s.name] for s in images.SCENES if s.role == "trash"]
    if library.client.server_version() < LOCKED_FOLDER_SINCE:
        library.client.trash(locked + trashed)
        for asset_id in locked + trashed:
            expect(library.client.asset(asset_id)["isTrashed"] is True, f"{asset_id} is not in the trash")
        return
    library.client.setup_pin_code(PIN_CODE)
    library.client.unlock_session(PIN_CODE)
    library.client.set_visibility(locked, "locked")
    library.client.trash(trashed)
    for asset_id in locked:
        expect(library.client.asset(asset_id)["visibility"] == "locked", f"{asset_id} is not locked")
    for asset_id in trashed:
        expect(library.client.asset(asset_id)["isTrashed"] is True, f"{asset_id} is not in the trash")
    library.client.lock_session()


def check_ocr_search(library: Library) -> str:
    seen = []
    for query, first, members in OCR_QUERIES:
        results = library.search(query)
        names = library.names(results)
        expect(bool(results), f"{query!r} returned nothing")
        expect(names[0] == first, f"{query!r}: expected {first} first, got {names}")
        expected = set(members)
        expect(
            set(names) == expected,
            f"{query!r}: OCR-only search returned {names}, expected exactly {expected}",
        )
        seen.append(f"{query} -> {names}")
    return "; ".join(seen)


def check_hybrid_search(library: Library) -> str:
    """A plain query fuses CLIP with OCR relevance: the assets whose text matches come first.

    The CLIP weights are random, so CLIP alone orders assets arbitrarily; text matches can only lead
    consistently when OCR relevance takes part in the ranking.
    """
    results = library.search("发票")
    names = library.names(results)
    wanted = {"receipt-invoice-title", "receipt-restaurant"}
    expect(set(names[:2]) == wanted, f"plain '发票': expected {wanted} on top, got {names}")
    expect(len(names) > len(wanted), f"plain '发票' returned only {names}; CLIP candidates are missing")
    results = library.search("Latte 拿铁")
    names_cafe = library.names(results)
    expect(bool(names_cafe) and names_cafe[0] == "sign-cafe", f"'Latte 拿铁': got {names_cafe}")
    return f"发票 -> {names}; Latte 拿铁 -> {names_cafe[:3]}"


def check_cross_script(library: Library) -> str:
    """Traditional and Simplified find each other in OCR search, and smart search reads both as one."""
    seen = []
    for query, wanted in (
        ("ocr:台北车站", {"sign-taipei-station"}),
        ("ocr:臺北", {"sign-taipei-station"}),
        ("ocr:發票", {"receipt-invoice-title", "receipt-restaurant"}),
    ):
        names = library.names(library.search(query))
        expect(set(names) == wanted, f"{query!r} returned {names}, expected exactly {wanted}")
        seen.append(f"{query} -> {names}")
    traditional = library.names(library.search("臺北車站"))
    simplified = library.names(library.search("台北车站"))
    expect(traditional == simplified, f"'臺北車站' ranked {traditional}, '台北车站' ranked {simplified}")
    expect(traditional[:1] == ["sign-taipei-station"], f"plain '台北车站' ranked {traditional}")
    seen.append(f"臺北車站 and 台北车站 rank alike: {traditional[:3]}")
    return "; ".join(seen)


def check_text_conversion_setting(library: Library) -> str:
    """The admin setting machineLearning.clip.textConversion: validated, kept, and read by the next query.

    With "off" stored, the next query reaches ml_service asking for "off" (its text-conversion counter shows
    the request's option); with the conversion back on, a Traditional query and its Simplified form rank
    alike. The rankings under "off" are reported, not compared: the e2e checkpoint's random weights map
    every text to nearly one embedding (cosine 0.96 - 0.98 between unrelated queries), so CLIP alone
    ranks the library the same for any query. tests/ml/test_script.py shows the option's effect on the
    embedding in ml_service.
    """
    client = library.client
    config = client.system_config()
    clip = config["machineLearning"]["clip"]
    expect("textConversion" in clip, f"the server's CLIP settings have no textConversion: {sorted(clip)}")
    expect(clip["textConversion"] == "t2s", f"textConversion defaults to {clip['textConversion']!r}")
    bad = copy.deepcopy(config)
    bad["machineLearning"]["clip"]["textConversion"] = "s2t"
    answer = client.request("PUT", "/system-config", expect=(400,), json=bad)
    expect("textConversion" in json.dumps(answer), f"the 400 does not name textConversion: {answer}")
    hybrid = config["machineLearning"]["ocr"]["hybridSearch"]
    off = copy.deepcopy(config)
    off["machineLearning"]["clip"]["textConversion"] = "off"
    off["machineLearning"]["ocr"]["hybridSearch"] = {**hybrid, "enabled": False}
    try:
        kept = client.update_system_config(off)["machineLearning"]["clip"]["textConversion"]
        expect(kept == "off", f"textConversion 'off' was stored as {kept!r}")
        before = library.text_conversions().get(("off", "request"), 0.0)
        traditional = library.names(library.search("臺北車站"))
        asked = library.text_conversions().get(("off", "request"), 0.0) - before
        expect(asked >= 1, "with 'off' stored, Immich's query reached ml_service without asking for 'off'")
        simplified = library.names(library.search("台北车站"))
        on = copy.deepcopy(off)
        on["machineLearning"]["clip"]["textConversion"] = "t2s"
        client.update_system_config(on)
        converted = library.names(library.search("臺北車站"))
        expect(converted == simplified, f"conversion on: {converted} (Traditional), {simplified}")
    finally:
        client.update_system_config(config)
    return (
        f"default t2s, 's2t' refused (400), 'off' kept and sent to ml_service ({asked:.0f} request(s); "
        f"ranked {traditional[:3]} vs {simplified[:3]}); on: alike"
    )


def check_near_match(library: Library) -> str:
    """A photo whose OCR misread one character is still found, after every exact match."""
    (scene,) = [s for s in images.SCENES if s.smudge is not None]
    title = scene.lines[0].text
    read = "".join(row["text"] for row in library.client.asset_ocr(library.assets[scene.name]))
    expect(
        bool(read) and title not in read, f"{scene.name}: OCR read {read!r}; the smudge no longer misleads it"
    )
    names = library.names(library.search(f"ocr:{title}"))
    expect(names[:1] == [scene.name], f"'ocr:{title}' returned {names} (OCR read {read!r})")
    return f"OCR read {read!r}; ocr:{title} -> {names}"


def check_hidden_assets(library: Library) -> str:
    hidden = {library.assets[s.name] for s in images.SCENES if s.role in ("locked", "trash")}
    probes = 0
    for query in HIDDEN_PROBES:
        # As the API is called bare and as the web app calls it (visibility: timeline).
        for filters in ({}, {"visibility": "timeline"}):
            leaked = hidden & set(library.search(query, **filters))
            expect(not leaked, f"{query!r} {filters} returned hidden assets {library.names(sorted(leaked))}")
            probes += 1
    return f"{probes} probes, no locked/trashed asset returned"


def check_refresh(library: Library, job: str) -> str:
    """Queue `job` for one asset; exactly that asset's OCR/CLIP rows must be rewritten."""
    target_name = "ticket-museum"
    target = library.assets[target_name]
    if job == "refresh-ocr":
        before_at, before_rows = library.ocr_done_at(), library.ocr_rows()
    else:
        before_versions = library.smart_search_versions()
    library.client.asset_jobs([target], job)
    if job == "refresh-ocr":
        wait_until(
            lambda: library.ocr_done_at().get(target) != before_at.get(target), 300, f"{job} of {target}"
        )
    else:
        wait_until(
            lambda: library.smart_search_versions().get(target) != before_versions.get(target),
            300,
            f"{job} of {target}",
        )
    library.client.wait_for_queues(("ocr", "smartSearch"), timeout=300)
    if job == "refresh-ocr":
        after_at, after_rows = library.ocr_done_at(), library.ocr_rows()
        changed = sorted(a for a in after_at if after_at[a] != before_at.get(a))
        expect(
            changed == [target],
            f"{job}: OCR re-ran for {library.names(changed)}, expected only {target_name}",
        )
        rewritten = sorted(a for a in after_rows if after_rows[a] != before_rows.get(a))
        expect(rewritten == [target], f"{job}: OCR rows rewritten for {library.names(rewritten)}")
        return f"ocrAt and OCR rows changed for {target_name} only ({len(after_at)} assets observed)"
    after_versions = library.smart_search_versions()
    changed = sorted(a for a in after_versions if after_versions[a] != before_versions.get(a))
    expect(
        changed == [target],
        f"{job}: embeddings rewritten for {library.names(changed)}, expected {target_name}",
    )
    return f"smart_search row rewritten for {target_name} only ({len(after_versions)} assets observed)"


def check_ml_outage(
    library: Library,
    image_dir: Path,
    stop_ml: Callable[[], None],
    start_ml: Callable[[], None],
    *,
    patched: bool,
) -> str:
    """With ml_service down Immich reports failures; once it is back, the missed work completes.

    Meanwhile a patched server (or the gateway in front of a stock one) answers a plain query with its OCR
    ranking (it needs no embedding) and says so in its log; a stock one fails the search, as upstream does.
    """
    log_before = len(library.immich_log())
    gateway_log_before = len(library.process_log("gateway"))
    stop_ml()
    path = image_dir / OUTAGE_SCENE.file_name
    path.write_bytes(images.render(OUTAGE_SCENE))
    asset_id = str(library.client.upload(path)["id"])
    library.assets[OUTAGE_SCENE.name] = asset_id

    def failure_reported() -> bool:
        new_log = library.immich_log()[log_before:]
        return "Machine learning server became unhealthy" in new_log or "failed for all URLs" in new_log

    wait_until(failure_reported, 180, "Immich to report the ML failure in its log")
    if patched:
        # a query not searched before: Immich caches the embeddings of earlier queries
        names = library.names(library.search("增值税"))
        expect(
            names == ["receipt-invoice-title"],
            f"with ML down, plain '增值税' should be answered by OCR ranking alone, got {names}",
        )
        logged = library.immich_log()[log_before:] + library.process_log("gateway")[gateway_log_before:]
        expect("OCR ranking only" in logged, "the fallback was not logged")
        search_outcome = f"plain '增值税' answered from OCR alone {names}"
    else:
        try:
            library.client.smart_search("停电")
            raise CheckFailed("smart search answered while ml_service was down")
        except ImmichError as error:
            search_outcome = f"search answered HTTP {error.status}"
    library.client.wait_for_queues(("ocr", "smartSearch", "thumbnailGeneration", "metadataExtraction"), 300)
    expect(asset_id not in library.ocr_done_at(), "OCR completed although ml_service was down")
    start_ml()
    # Immich checks its ML servers' health from v1.143 on; before, each request simply tries them again
    if "Machine learning server became unhealthy" in library.immich_log()[log_before:]:
        wait_until(
            lambda: "Machine learning server became healthy" in library.immich_log()[log_before:],
            120,
            "ML healthy again",
        )
    library.client.queue_command("ocr", "start")
    library.client.queue_command("smartSearch", "start")
    library.wait_processed([asset_id], timeout=300)
    names = library.names(library.search("ocr:停电"))
    expect(names[:1] == [OUTAGE_SCENE.name], f"after recovery 'ocr:停电' returned {names}")
    return f"outage: log reported it, {search_outcome}; recovered: ocr:停电 -> {names}"
