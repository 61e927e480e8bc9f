"""One end-to-end run: prepare and build the tree, start the stack, run the checks, stop it all, report."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from e2e import browser, build, checks, clip_weights, gateway_checks, large_upload, services, sharing
from e2e.immich_api import ImmichClient
from e2e.observe import Library
from e2e.ports import PortAllocator, is_port_free
from e2e.report import Outcome, Report
from e2e.supervisor import Supervisor, signals_ignored, signals_raise_interrupted, wait_until
from ml_service.models.clip.names import DEFAULT_CN_CLIP_MODEL, UPSTREAM_ALIAS_MODEL

#: What the gateway run uploads through it to show that bodies stream (the issue's 2 GB).
LARGE_UPLOAD = 2 << 30


@dataclass(frozen=True)
class RunOptions:
    version: str
    source: str
    report_dir: Path
    cache: Path
    unpatched: bool = False
    keep: bool = False
    database_url: str | None = None
    skip_browser: bool = False
    fresh: bool = False
    #: What stands in front of the server: the gateway (an unpatched server's search), nginx in front of it.
    front: services.Front = "none"

    @property
    def serves_aio(self) -> bool:
        """Whether immich-aio's search and refresh jobs are served: by a patched server, or by the gateway in
        front of a stock one."""
        return not self.unpatched or self.front != "none"


def clip_model_for(tree: Path) -> tuple[str, dict[str, str]]:
    """The CLIP model name to select in Immich, and the ml_service env that serves it as Chinese-CLIP.

    An unpatched tree knows no Chinese-CLIP name: ml_service then serves it under UPSTREAM_ALIAS_MODEL.
    """
    constants = (tree / "server" / "src" / "constants.ts").read_text(encoding="utf-8")
    if f"'{DEFAULT_CN_CLIP_MODEL}'" in constants or f'"{DEFAULT_CN_CLIP_MODEL}"' in constants:
        return DEFAULT_CN_CLIP_MODEL, {}
    return UPSTREAM_ALIAS_MODEL, {
        "IMMICH_AIO_ML_CLIP_ALIASES": f"{UPSTREAM_ALIAS_MODEL}={DEFAULT_CN_CLIP_MODEL}"
    }


def prepare_tree(options: RunOptions, report: Report) -> Path:
    kind = "unpatched" if options.unpatched else "patched"
    with report.check(f"prepare {kind} {options.version} tree") as result:
        tree = build.prepare_tree(
            options.version, options.source, options.cache, patched=not options.unpatched,
            fresh=options.fresh, log_dir=options.report_dir / "logs",
        )  # fmt: skip
        result.detail = f"{tree} at {build.short_head(tree)}"
    report.meta.update({"tree": str(tree), "tree_kind": kind})
    return tree


def run(options: RunOptions) -> Report:
    """Do the whole run; the returned report says what passed. Never leaves a process behind."""
    report = Report(options.report_dir)
    report.meta.update({"immich_version": options.version, "source": options.source})
    run_dir = options.cache / "runs" / time.strftime("%Y%m%dT%H%M%S")
    supervisor = Supervisor(options.report_dir / "logs")
    ports = PortAllocator()
    try:
        with signals_raise_interrupted():
            tree = prepare_tree(options, report)
            what = "server" if options.skip_browser else "server + web"
            with report.check(f"install dependencies and build {what}") as result:
                built = build.build_tree(
                    tree, options.cache, options.report_dir / "logs", web=not options.skip_browser
                )
                for step, seconds in built.steps.items():
                    report.timing(f"build_{step}", seconds)
                result.detail = "reused the cached build" if built.reused else f"built: {built.steps}"
                if built.notes:
                    result.detail += "; " + "; ".join(built.notes)
            toolchain = build.find_toolchain(tree)
            build_data = build.build_data_dir(tree, run_dir / "build-data")
            clip_model, ml_alias_env = clip_model_for(tree)
            weights = options.cache / "cn-clip"
            with report.check("Chinese-CLIP checkpoint (random weights, cn_clip format)"):
                clip_weights.ensure_random_checkpoint(weights)
            ml_env = {
                "IMMICH_AIO_ML_CLIP_WEIGHTS_DIR": str(weights),
                "IMMICH_AIO_ML_LOG_FORMAT": "text",
                "IMMICH_AIO_ML_PRELOAD": f"ocr,{DEFAULT_CN_CLIP_MODEL}",
                **ml_alias_env,
            }
            stack_options = services.StackOptions(
                tree=tree,
                node=toolchain.node,
                run_dir=run_dir,
                build_data=build_data,
                database_url=options.database_url,
                ml_env=ml_env,
                front=options.front,
            )
            with report.check("start PostgreSQL, Redis, ml_service and Immich") as result:
                stack = services.start_stack(stack_options, supervisor, ports, build.immich_aio_command())
                for name, process in supervisor.processes.items():
                    if process.ready_seconds is not None:
                        report.timing(f"ready_{name}", process.ready_seconds)
                result.detail = f"Immich at {stack.server_url}, ml_service at {stack.ml_url}"
                if options.front != "none":
                    result.detail += f", clients through the {options.front} at {stack.immich_url}"
            report.meta["clip_model"] = clip_model
            drive(stack, options, report, tree, toolchain.node, clip_model, run_dir)
            if options.keep:
                keep_running(stack, report)
    except KeyboardInterrupt as interrupt:
        report.not_run("run interrupted", str(interrupt) or "Ctrl-C")
    except Exception as error:
        # The failing step is already in the report when it ran inside report.check; either way, say
        # that what follows it did not run.
        report.not_run("remaining steps", f"stopped by {type(error).__name__}: {error}")
    finally:
        with signals_ignored():
            tear_down(supervisor, ports, report)
        if not options.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        report.write()
    return report


def keep_running(stack: services.Stack, report: Report) -> None:
    """--keep: leave the stack up for a look around until Ctrl-C/SIGTERM; the report is final already."""
    report.write()
    print(
        f"--keep: Immich runs at {stack.immich_url} (login {checks.ADMIN_EMAIL} / {checks.ADMIN_PASSWORD}); "
        "press Ctrl-C to stop everything.",
        flush=True,
    )
    try:
        while True:
            stack.supervisor.check_alive()
            time.sleep(2)
    except KeyboardInterrupt:
        pass


def drive(
    stack: services.Stack,
    options: RunOptions,
    report: Report,
    tree: Path,
    node: Path,
    clip_model: str,
    run_dir: Path,
) -> None:
    """The API and browser part: the checks in the order a self-hoster would meet them."""
    client = ImmichClient(stack.immich_url)
    library = Library(client, stack.database_url, stack.supervisor, stack.ml_url)
    image_dir = run_dir / "images"
    try:
        with report.check("admin sign-up, login, Chinese-CLIP + OCR settings") as result:
            checks.set_up_admin(library, stack.ml_url, clip_model)
            result.detail = f"CLIP model {clip_model}"
        if options.front != "none":
            with report.check("gateway: admin API key saved through its settings page") as result:
                result.detail = gateway_checks.configure(library)
        with report.check("upload test images") as result:
            checks.upload_all(library, image_dir, report)
            result.detail = f"{len(library.assets)} images"
        with report.check("Immich's OCR + smart-search jobs finish through ml_service") as result:
            seconds = library.wait_processed(list(library.assets.values()))
            report.timing("processing_total", seconds)
            report.timing("processing_per_image", seconds / len(library.assets))
            result.detail = f"{len(library.assets)} assets in {seconds:.1f}s"
        with report.check("ml_service inference figures", fatal=False) as result:
            report.figures["ml_inference"] = library.ml_inference_figures()
            checks.expect(bool(report.figures["ml_inference"]), "ml_service /metrics shows no inference")
            result.detail = str(report.figures["ml_inference"])
        with report.check("OCR text recovered", fatal=False) as result:
            result.detail = checks.check_ocr_text(library)
        with report.check("locked folder + trash set up"):
            checks.hide_assets(library)
        with report.check("ocr: search ranks text matches first", fatal=False) as result:
            result.detail = checks.check_ocr_search(library)
        with report.check("plain query is hybrid-ranked (CLIP + OCR)", fatal=False) as result:
            result.detail = checks.check_hybrid_search(library)
        with report.check("Traditional and Simplified find each other", fatal=False) as result:
            result.detail = checks.check_cross_script(library)
        if options.front != "none":
            with report.check(
                "gateway settings: admins only, a saved value changes the next search"
            ) as result:
                result.detail = gateway_checks.check_settings(library)
        else:
            with report.check("admin setting: how Traditional queries are read", fatal=False) as result:
                result.detail = checks.check_text_conversion_setting(library)
        with report.check("a misread character is forgiven (near match)", fatal=False) as result:
            result.detail = checks.check_near_match(library)
        with report.check("locked and trashed assets never appear", fatal=False) as result:
            result.detail = checks.check_hidden_assets(library)
        if options.serves_aio:
            with report.check("refresh-ocr re-runs OCR for that asset alone", fatal=False) as result:
                result.detail = checks.check_refresh(library, "refresh-ocr")
            with report.check(
                "refresh-smart-search re-runs CLIP for that asset alone", fatal=False
            ) as result:
                result.detail = checks.check_refresh(library, "refresh-smart-search")
        with report.check("sharing and permissions: nobody sees what they may not", fatal=False) as result:
            result.detail = sharing.check_sharing(
                library, image_dir, patched=options.serves_aio, gateway=options.front != "none"
            )
        if options.front != "none":
            with report.check("a 2 GiB upload through the gateway arrives whole", fatal=False) as result:
                result.detail = large_upload.check_large_upload(library, run_dir / "large", LARGE_UPLOAD)
        report.figures["search_latency"] = library.search_latency_figures()
        if options.skip_browser:
            report.not_run("browser steps", "--skip-browser given")
        else:
            run_browser(library, stack, options, report, tree, node)
        with report.check("ml_service outage: Immich reports it and recovers", fatal=False) as result:

            def stop_ml() -> None:
                stack.supervisor.stop("ml")

            def start_ml() -> None:
                stack.supervisor.restart("ml")

            result.detail = checks.check_ml_outage(
                library, image_dir, stop_ml, start_ml, patched=options.serves_aio
            )
    finally:
        client.close()


def run_browser(
    library: Library,
    stack: services.Stack,
    options: RunOptions,
    report: Report,
    tree: Path,
    node: Path,
) -> None:
    labels: tuple[str | None, str | None] | None = browser.menu_labels(tree)
    if labels is None and options.front != "none":
        labels = (None, None)  # the official web app: search through the gateway, no refresh menu yet
    if labels is None:
        report.not_run(
            "browser steps", "the tree's web app has no 'Refresh OCR' menu item (refresh_ocr i18n key)"
        )
        return
    plan = browser.BrowserPlan(
        base_url=stack.immich_url,
        email=checks.ADMIN_EMAIL,
        password=checks.ADMIN_PASSWORD,
        asset_id=library.assets["receipt-invoice-title"],
        search_query="ocr:发票",
        menu_item=labels[0],
        toast_text=labels[1],
        addon=gateway_checks.addon_labels(tree) if options.front != "none" else None,
    )
    ocr_before_all, clip_before_all = library.ocr_done_at(), library.smart_search_versions()
    ocr_before = ocr_before_all.get(plan.asset_id)
    with report.check("browser driver runs"):
        result = browser.run_steps(plan, node, options.cache, options.report_dir)
    for step in result.steps:
        report.record(step.name, Outcome.PASSED if step.ok else Outcome.FAILED, step.seconds, step.detail)
        if step.screenshot:
            report.add_screenshot(step.screenshot)
    with report.check("browser: ocr:发票 shows the expected assets, best first", fatal=False) as check:
        names = library.names(result.search_result_ids)
        checks.expect(bool(names) and names[0] == "receipt-invoice-title", f"browser results: {names}")
        checks.expect(
            set(names) == {"receipt-invoice-title", "receipt-restaurant"}, f"browser results: {names}"
        )
        check.detail = f"{names}"
    if plan.addon is not None:
        with report.check("browser: the add-on's clicks re-ran exactly those assets", fatal=False) as check:
            check.detail = gateway_checks.check_addon_effects(
                library, plan.asset_id, result.selection_ids, ocr_before_all, clip_before_all
            )
    if plan.menu_item is None:
        return
    with report.check("browser: the menu's Refresh OCR re-ran OCR for that asset", fatal=False) as check:
        wait_until(
            lambda: library.ocr_done_at().get(plan.asset_id) != ocr_before, 180, "OCR of the refreshed asset"
        )
        check.detail = f"ocrAt {ocr_before} -> {library.ocr_done_at().get(plan.asset_id)}"


def tear_down(supervisor: Supervisor, ports: PortAllocator, report: Report) -> None:
    """Stop everything and prove it: no started process alive, no port of the run still bound."""
    processes = list(supervisor.processes.values())
    with report.check("teardown: every process stopped, every port released", fatal=False) as result:
        supervisor.close()
        alive = [p.spec.name for p in processes if p.is_running()]
        checks.expect(not alive, f"still running: {alive}")
        deadline = time.monotonic() + 30
        bound = sorted(p for p in ports.given if not is_port_free(p))
        while bound and time.monotonic() < deadline:
            time.sleep(0.5)
            bound = sorted(p for p in ports.given if not is_port_free(p))
        checks.expect(not bound, f"ports still bound: {bound}")
        checks.expect(not supervisor.cleanup_errors, f"cleanup errors: {supervisor.cleanup_errors}")
        result.detail = f"{len(processes)} processes stopped, {len(ports.given)} ports free"
