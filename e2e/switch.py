"""Upgrades and the way back on real servers: one library opened by a sequence of Immich servers.

`immich-aio e2e-switch --path v3.0.3,v3.1.0,v3.1.0:stock,v3.1.0` starts PostgreSQL, Redis and ml_service
once, then each stage's Immich server in turn on the same database and media folder, as a self-hoster
does by changing the image tag. Every stage must start with its migrations passing and find the whole
library (assets, albums, OCR rows, embeddings) still there; a patched stage must rank OCR and keep the
immich_aio documents without rebuilding them (unless a stock stage changed the library in between), a
stock stage must search with upstream's own behaviour.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from e2e import build, checks, clip_weights, images, services
from e2e.immich_api import ImmichClient
from e2e.observe import Library
from e2e.ports import PortAllocator
from e2e.report import Report
from e2e.run import tear_down
from e2e.supervisor import Supervisor, signals_ignored, signals_raise_interrupted, wait_until
from ml_service.models.clip.names import DEFAULT_CN_CLIP_MODEL, UPSTREAM_ALIAS_MODEL
from patcher.versions import parse

# Immich's tables the library lives in (v3 names), counted at every stage; its OCR boxes are counted where
# the release keeps them (Immich's asset_ocr, or the v1 series' immich_aio_ocr.asset_ocr).
# each table of the library by its v1.136+ name, with the name it had before (Immich renamed them in v1.136)
LIBRARY_TABLES = {
    "asset": ("asset", "assets"),
    "album": ("album", "albums"),
    "album_asset": ("album_asset", "albums_assets_assets"),
    "smart_search": ("smart_search",),
    "asset_face": ("asset_face", "asset_faces"),
}
OCR_BOXES = "ocr boxes"
STARTUP_FAILURES = ("Migrations failed", "corrupted migrations", "Unknown CLIP model", " ERROR [")
STOCK_SCENE = images.Scene(
    "sign-stock-upload",
    "sign",
    images.lines_of(("禁止吸烟 No Smoking", 72, True), "违者罚款 200 元"),
    size=(1440, 900),
    paper=(250, 250, 250),
)


class PathError(ValueError):
    """The --path expression names no stage or a malformed one."""


@dataclass(frozen=True)
class Stage:
    version: str
    patched: bool

    @property
    def label(self) -> str:
        return f"{self.version} {'patched' if self.patched else 'stock'}"

    @property
    def reads_text(self) -> bool:
        """Whether this server OCRs photos: every patched one; a stock one from v2.2 (upstream's OCR)."""
        return self.patched or parse(self.version) >= parse("v2.2.0")


def parse_path(expression: str) -> list[Stage]:
    """'v3.0.3,v3.1.0:stock' -> stages; a version alone is patched, `:stock` (or `:patched`) says which."""
    stages = []
    for part in (p.strip() for p in expression.split(",")):
        if not part:
            continue
        version, _, kind = part.partition(":")
        if kind not in ("", "patched", "stock") or not version.startswith("v"):
            raise PathError(f"{part!r}: expected vX.Y.Z, vX.Y.Z:patched or vX.Y.Z:stock")
        stages.append(Stage(version, kind != "stock"))
    if len(stages) < 2:
        raise PathError(f"{expression!r}: a switch needs at least two stages")
    return stages


@dataclass(frozen=True)
class SwitchOptions:
    stages: list[Stage]
    source: str
    report_dir: Path
    cache: Path


@dataclass
class Seen:
    """What the library held after the previous stage, to compare the next one with."""

    counts: dict[str, int] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)
    stock_changed: bool = False
    stock_read_text: bool = True
    # OCR as Immich ran it: asset -> asset_ocr row ids, asset -> asset_job_status."ocrAt"
    ocr_rows: dict[str, set[str]] = field(default_factory=dict)
    ocr_at: dict[str, str] = field(default_factory=dict)
    # each `ocr:` query of checks.OCR_QUERIES -> the scenes a patched stage returned, in order
    ocr_results: dict[str, list[str]] = field(default_factory=dict)
    # where the previous stage kept OCR: Immich's own tables, or the v1 series' immich_aio_ocr
    ocr_tables: tuple[str, str] = ("asset_ocr", "asset_job_status")


def run_switch(options: SwitchOptions) -> Report:
    """Run every stage in order on one library; never leaves a process behind."""
    report = Report(options.report_dir)
    report.meta.update({"path": ", ".join(s.label for s in options.stages), "source": options.source})
    run_dir = options.cache / "runs" / f"switch-{time.strftime('%Y%m%dT%H%M%S')}"
    supervisor = Supervisor(options.report_dir / "logs")
    ports = PortAllocator()
    try:
        with signals_raise_interrupted():
            trees = prepare_trees(options, report)
            weights = options.cache / "cn-clip"
            clip_weights.ensure_random_checkpoint(weights)
            ml_env = {
                "IMMICH_AIO_ML_CLIP_WEIGHTS_DIR": str(weights),
                "IMMICH_AIO_ML_LOG_FORMAT": "text",
                "IMMICH_AIO_ML_PRELOAD": f"ocr,{DEFAULT_CN_CLIP_MODEL}",
                # a stock stage asks for the upstream name: the same Chinese-CLIP answers it
                "IMMICH_AIO_ML_CLIP_ALIASES": f"{UPSTREAM_ALIAS_MODEL}={DEFAULT_CN_CLIP_MODEL}",
            }
            with report.check("start PostgreSQL, Redis and ml_service (kept for every stage)"):
                support = services.start_support(
                    supervisor, ports, run_dir, ml_env, build.immich_aio_command()
                )
            seen = Seen()
            for number, stage in enumerate(options.stages):
                run_stage(number, stage, trees[stage], support, supervisor, ports, run_dir, report, seen)
    except KeyboardInterrupt as interrupt:
        report.not_run("run interrupted", str(interrupt) or "Ctrl-C")
    except Exception as error:
        report.not_run("remaining stages", f"stopped by {type(error).__name__}: {error}")
    finally:
        with signals_ignored():
            tear_down(supervisor, ports, report)
        report.write()
    return report


def prepare_trees(options: SwitchOptions, report: Report) -> dict[Stage, tuple[Path, Path]]:
    """Each distinct stage's tree, built once: stage -> (tree, node)."""
    trees: dict[Stage, tuple[Path, Path]] = {}
    for stage in dict.fromkeys(options.stages):
        with report.check(f"prepare and build {stage.label}") as result:
            tree = build.prepare_tree(
                stage.version, options.source, options.cache, patched=stage.patched, fresh=False,
                log_dir=options.report_dir / "logs",
            )  # fmt: skip
            try:
                built = build.build_tree(tree, options.cache, options.report_dir / "logs")
                web = ""
            except build.BuildError as error:
                # the switch drives the API only: a stock release whose web app cannot be installed here
                # (its locked packages missing from the registry) still opens the library
                if stage.patched:
                    raise
                built = build.build_tree(tree, options.cache, options.report_dir / "logs", web=False)
                web = (
                    f"; web app not built ({str(error).splitlines()[0][:160]}): the switch needs the API only"
                )
            trees[stage] = (tree, build.find_toolchain(tree).node)
            result.detail = ("reused the cached build" if built.reused else f"built: {built.steps}") + web
    return trees


def run_stage(
    number: int,
    stage: Stage,
    tree_node: tuple[Path, Path],
    support: services.Support,
    supervisor: Supervisor,
    ports: PortAllocator,
    run_dir: Path,
    report: Report,
    seen: Seen,
) -> None:
    tree, node = tree_node
    name = f"stage {number + 1} ({stage.label})"
    with report.check(f"{name}: Immich starts, its migrations pass") as result:
        log_start = log_size(supervisor)
        build_data = build.build_data_dir(tree, run_dir / f"build-data-{number}")
        url = services.start_immich(supervisor, ports, support, tree, node, build_data)
        library = Library(ImmichClient(url), support.database_url, supervisor, support.ml_url)
        markers = migrations_done_markers(stage)
        wait_until(lambda: any(m in stage_log(supervisor, log_start) for m in markers), 120, "migrations")
        time.sleep(5)  # the microservices worker's own bootstrap (config, jobs) after the migrations
        supervisor.check_alive()
        failures = [line for line in stage_log(supervisor, log_start).splitlines() if has_failure(line)]
        checks.expect(not failures, "startup errors: " + " | ".join(failures[:5]))
        result.detail = f"Immich at {url}"
    try:
        if number == 0:
            with report.check(f"{name}: set up the library") as result:
                result.detail = set_up_library(library, stage, run_dir / "images")
        else:
            library.client.login(checks.ADMIN_EMAIL, checks.ADMIN_PASSWORD)
            library.assets = known_assets(library)
            rereads = rereads_text(library, stage, seen)
            with report.check(f"{name}: the whole library is still there", fatal=False) as result:
                counts = library_counts(library)
                before = {k: v for k, v in seen.counts.items() if not rereads or k != OCR_BOXES}
                checks.expect(same_library(before, counts), f"before {seen.counts}, now {counts}")
                result.detail = str(counts)
            if rereads:
                with report.check(
                    f"{name}: the v1 series' OCR is kept for a patched release", fatal=False
                ) as result:
                    result.detail = v1_ocr_kept(library, seen)
                with report.check(
                    f"{name}: stock Immich reads the photos with its own OCR", fatal=False
                ) as result:
                    library.client.queue_command("ocr", "start", force=False)  # the admin's "Missing"
                    live = library.query(
                        "SELECT id::text FROM asset WHERE \"deletedAt\" IS NULL AND visibility <> 'hidden'"
                    )
                    library.wait_processed([str(row[0]) for row in live], timeout=600)
                    result.detail = f"OCR 'Missing' read {len(library.ocr_done_at())} assets"
            else:
                with report.check(f"{name}: OCR was not run again", fatal=False) as result:
                    result.detail = ocr_kept(library, seen)
        with report.check(f"{name}: search", fatal=False) as result:
            result.detail = check_search(library, stage, seen)
        if not stage.patched:
            with report.check(f"{name}: a stock server adds a photo", fatal=False) as result:
                result.detail = stock_upload(library, run_dir / "images", stage)
                seen.stock_changed, seen.stock_read_text = True, stage.reads_text
        else:
            seen.stock_changed = False
        seen.counts = library_counts(library)
        seen.documents = documents(library) if stage.patched else seen.documents
        seen.ocr_rows, seen.ocr_at = ocr_state(library)
        seen.ocr_tables = library.ocr_tables()
    finally:
        library.client.close()
        supervisor.stop("immich")


def rereads_text(library: Library, stage: Stage, seen: Seen) -> bool:
    """A stock release with OCR of its own opened on a library the v1 series read: it does not know that
    OCR (a patched release carries it over) and reads the photos again."""
    v1 = seen.ocr_tables[0].startswith("immich_aio_ocr.")
    return v1 and not stage.patched and library.ocr_tables() != seen.ocr_tables


def v1_ocr_kept(library: Library, seen: Seen) -> str:
    """The v1 series' boxes are all still in immich_aio_ocr, untouched by the stock server."""
    kept = int(library.query(f"SELECT count(*) FROM {seen.ocr_tables[0]}")[0][0])
    checks.expect(kept == seen.counts[OCR_BOXES], f"{seen.counts[OCR_BOXES]} boxes before, {kept} now")
    return f"{kept} boxes in {seen.ocr_tables[0]}, for a patched release to carry over"


def migrations_done_markers(stage: Stage) -> tuple[str, ...]:
    """Log lines that say the migrations are over. Before v2.2 Immich logs "Finished running migrations"
    at debug level only; its storage check, which starts once the database is ready, says it there."""
    if parse(stage.version) >= parse("v2.2.0"):
        return ("Finished running migrations",)
    return ("Finished running migrations", "Verifying system mount folder checks")


def log_size(supervisor: Supervisor) -> int:
    try:
        return len(supervisor.get("immich").log_path.read_text(encoding="utf-8", errors="replace"))
    except (KeyError, FileNotFoundError):
        return 0


def stage_log(supervisor: Supervisor, start: int) -> str:
    return supervisor.get("immich").log_path.read_text(encoding="utf-8", errors="replace")[start:]


def has_failure(line: str) -> bool:
    return any(marker in line for marker in STARTUP_FAILURES) and "ExperimentalWarning" not in line


def set_up_library(library: Library, stage: Stage, image_dir: Path) -> str:
    clip_model = DEFAULT_CN_CLIP_MODEL if stage.patched else UPSTREAM_ALIAS_MODEL
    checks.set_up_admin(library, library.ml_url, clip_model)
    paths = images.write_all(image_dir)
    for scene in images.SCENES:
        library.assets[scene.name] = str(library.client.upload(paths[scene.name])["id"])
    library.wait_processed(list(library.assets.values()), ocr=stage.reads_text)
    checks.hide_assets(library)
    receipts = [library.assets["receipt-invoice-title"], library.assets["receipt-restaurant"]]
    library.client.create_album("发票 receipts", receipts)
    return f"{len(library.assets)} photos processed, one album, CLIP model {clip_model}"


def known_assets(library: Library) -> dict[str, str]:
    """Scene name -> asset id, found again by the uploaded file names."""
    scenes = {scene.file_name: scene.name for scene in (*images.SCENES, STOCK_SCENE)}
    asset_table = table_of(library, LIBRARY_TABLES["asset"])
    rows = library.query(f'SELECT "originalFileName", id::text FROM {asset_table}')
    return {scenes[str(file)]: str(asset) for file, asset in rows if str(file) in scenes}


def table_of(library: Library, names: tuple[str, ...]) -> str:
    """The first of `names` that this release's database has."""
    for name in names:
        if library.table_exists(name):
            return name
    raise checks.CheckFailed(f"the database has none of the tables {', '.join(names)}")


def library_counts(library: Library) -> dict[str, int]:
    """Rows of each library table; upstream's ocr_search only where it exists (from v2.2 on: a carry-over
    from the v1 series fills it, so it is compared only between stages that both have it)."""
    counts = {}
    for table, names in LIBRARY_TABLES.items():
        counts[table] = int(library.query(f"SELECT count(*) FROM {table_of(library, names)}")[0][0])
    boxes = library.ocr_tables()[0]
    exists = library.table_exists(boxes)
    counts[OCR_BOXES] = int(library.query(f"SELECT count(*) FROM {boxes}")[0][0]) if exists else 0
    if library.table_exists("ocr_search"):
        counts["ocr_search"] = int(library.query("SELECT count(*) FROM ocr_search")[0][0])
    return counts


def same_library(before: dict[str, int], now: dict[str, int]) -> bool:
    return all(now.get(table) == count for table, count in before.items() if table in now)


def documents(library: Library) -> dict[str, str]:
    """assetId -> the document row's version (xmin): a rebuild of a document changes it."""
    rows = library.query('SELECT "assetId"::text, xmin::text FROM immich_aio.asset_ocr_document')
    return {str(asset): str(version) for asset, version in rows}


def ocr_state(library: Library) -> tuple[dict[str, set[str]], dict[str, str]]:
    """What the OCR left: each asset's box ids and its run's "ocrAt", wherever the release keeps them."""
    return library.ocr_rows(), {asset: str(stamp) for asset, stamp in library.ocr_done_at().items()}


def ocr_kept(library: Library, seen: Seen) -> str:
    """Every asset OCR'd before this stage keeps its OCR rows and its "ocrAt": nothing ran OCR again."""
    rows, stamps = ocr_state(library)
    redone = sorted(
        library.name_of(asset)
        for asset in seen.ocr_at
        if stamps.get(asset) != seen.ocr_at[asset]
        or rows.get(asset, set()) != seen.ocr_rows.get(asset, set())
    )
    checks.expect(not redone, f"OCR rows or ocrAt changed for {redone}")
    kept = sum(len(ids) for asset, ids in rows.items() if asset in seen.ocr_at)
    return f"{len(seen.ocr_at)} assets keep their ocrAt and their {kept} OCR boxes"


def same_ocr_results(library: Library, seen: Seen) -> str:
    """Every `ocr:` query of the e2e answers the scenes it answered at the previous patched stage."""
    results = {query: library.names(library.search(query)) for query, _, _ in checks.OCR_QUERIES}
    if seen.ocr_results:
        changed = {
            q: (seen.ocr_results[q], now) for q, now in results.items() if seen.ocr_results.get(q) != now
        }
        checks.expect(not changed, f"ocr: results changed (before, now): {changed}")
        summary = f"{len(results)} ocr: queries answer as before"
    else:
        summary = f"{len(results)} ocr: queries recorded"
    seen.ocr_results = results
    return summary


def check_search(library: Library, stage: Stage, seen: Seen) -> str:
    if stage.patched:
        unread = ""
        if seen.stock_changed and not seen.stock_read_text:
            # a stock release without OCR left photos unread: the admin runs OCR's "Missing"
            library.client.queue_command("ocr", "start", force=False)
            library.wait_processed(live_assets(library), timeout=600)
            unread = (
                f"; OCR 'Missing' read what the stock stage left unread ({len(library.ocr_done_at())} assets)"
            )
        ranked = library.names(library.search("ocr:发票"))
        checks.expect(ranked[:2] == ["receipt-invoice-title", "receipt-restaurant"], f"ocr:发票 -> {ranked}")
        detail = f"ocr:发票 -> {ranked}; {same_ocr_results(library, seen)}{unread}"
        if seen.stock_changed:
            found = library.names(library.search("ocr:禁止吸烟"))
            checks.expect(
                found[:1] == [STOCK_SCENE.name], f"photo added under stock: ocr:禁止吸烟 -> {found}"
            )
            detail += f"; caught up with the stock stage: ocr:禁止吸烟 -> {found}"
        elif seen.documents:
            now = documents(library)
            checks.expect(now == seen.documents, "the immich_aio documents were rebuilt at the upgrade")
            detail += f"; {len(now)} OCR documents kept as they were"
        return detail
    smart = library.search("发票")
    checks.expect(bool(smart), "stock smart search returned nothing")
    if not stage.reads_text:
        return f"no OCR in stock {stage.version}; smart search answered {len(smart)} results"
    filtered = library.names([str(a["id"]) for a in library.client.metadata_search(ocr="发票")])
    checks.expect(
        {"receipt-invoice-title", "receipt-restaurant"} <= set(filtered),
        f"upstream OCR filter 发票 -> {filtered}",
    )
    return f"upstream OCR filter 发票 -> {sorted(filtered)}; smart search answered {len(smart)} results"


def live_assets(library: Library) -> list[str]:
    """The library's photos in the timeline: neither locked nor trashed by the e2e."""
    scenes = (*images.SCENES, STOCK_SCENE)
    return [
        library.assets[s.name]
        for s in scenes
        if s.name in library.assets and s.role not in ("locked", "trash")
    ]


def stock_upload(library: Library, image_dir: Path, stage: Stage) -> str:
    path = image_dir / STOCK_SCENE.file_name
    path.write_bytes(images.render(STOCK_SCENE))
    asset_id = str(library.client.upload(path)["id"])
    library.assets[STOCK_SCENE.name] = asset_id
    library.wait_processed([asset_id], timeout=300, ocr=stage.reads_text)
    if not stage.reads_text:
        return f"{STOCK_SCENE.name} uploaded and embedded by stock Immich (no OCR before v2.2)"
    return f"{STOCK_SCENE.name} uploaded and OCR'd by stock Immich"
