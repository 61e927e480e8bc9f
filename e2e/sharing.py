"""Nobody sees what they may not: every way Immich shares, probed through its API on the running server.

A second user's photos carry words no photo of the first user has; each probe is a search (ocr:, hybrid,
the filter modal's OCR type) or a refresh job made by an identity that must not reach them: a user with no
sharing, a partner without and with "show in timeline", a member of a shared album, a shared-link visitor,
API keys lacking a permission, and a refresh job naming another user's photo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e import images
from e2e.immich_api import ImmichClient, ImmichError
from e2e.observe import Library

OTHER_EMAIL = "partner@e2e.immich-aio.test"
OTHER_PASSWORD = "e2e-password-8"
SECRET_WORD = "合同"  # on the second user's photos only
OTHER_SCENES = (
    images.Scene(
        "other-contract", "document", images.lines_of(("购销合同 CONTRACT", 72, True), "甲方 乙方 签字")
    ),
    images.Scene("other-archived", "document", images.lines_of(("租赁合同 LEASE", 72, True), "押金 两个月")),
    images.Scene("other-locked", "document", images.lines_of(("劳动合同 PRIVATE", 72, True), "工资 保密")),
    images.Scene("other-trash", "document", images.lines_of(("旧合同 OLD", 72, True), "作废 删除")),
)
NEVER_VISIBLE = ("other-locked", "other-trash")


class LeakFound(AssertionError):
    """A probe returned a photo or queued a job it must not."""


@dataclass
class Probes:
    """What the probes saw: how many ran, and every leak (there must be none)."""

    count: int = 0
    leaks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def refused(self, what: str, error: ImmichError) -> None:
        """A probe Immich answered with an error: a refusal (4xx) shows nothing, a server error is a fault."""
        self.count += 1
        if error.status >= 500:
            self.leaks.append(f"{what}: HTTP {error.status}")
        else:
            self.notes.append(f"{what}: refused (HTTP {error.status})")

    def expect_none(self, what: str, found: set[str], forbidden: set[str]) -> None:
        self.count += 1
        if found & forbidden:
            self.leaks.append(f"{what}: {sorted(found & forbidden)}")


def searches(
    client: ImmichClient, params: dict[str, str] | None = None
) -> dict[str, Callable[[], list[str]]]:
    """The three ways a query reaches OCR text, each returning asset ids."""

    def smart(query: str) -> list[str]:
        body = {"query": query, "size": 100}
        data = client.request("POST", "/search/smart", json=body, params=params)
        return [str(item["id"]) for item in data["assets"]["items"]]

    def metadata() -> list[str]:
        data = client.request(
            "POST", "/search/metadata", json={"ocr": SECRET_WORD, "size": 100}, params=params
        )
        return [str(item["id"]) for item in data["assets"]["items"]]

    return {
        f"ocr:{SECRET_WORD}": lambda: smart(f"ocr:{SECRET_WORD}"),
        f"plain {SECRET_WORD}": lambda: smart(SECRET_WORD),
        f"filter ocr={SECRET_WORD}": metadata,
    }


def check_sharing(library: Library, image_dir: Path, *, patched: bool, gateway: bool = False) -> str:
    """Run every probe; raises LeakFound listing each leak. Returns a summary with the probe count."""
    admin = library.client
    me = admin.request("GET", "/users/me")
    admin.request(
        "POST", "/admin/users", json={"email": OTHER_EMAIL, "password": OTHER_PASSWORD, "name": "Partner"}
    )
    other = ImmichClient(admin.base_url)
    other_user = other.login(OTHER_EMAIL, OTHER_PASSWORD)
    other.finish_user_onboarding()
    theirs = upload_other_library(other, library, image_dir)
    all_theirs = set(theirs.values())
    never = {theirs[name] for name in NEVER_VISIBLE}
    probes = Probes()
    try:
        for what, run in searches(admin).items():
            probes.expect_none(f"no sharing, {what}", set(run()), all_theirs)

        other.share_with_partner(me["id"])
        for what, run in searches(admin).items():
            probes.expect_none(f"partner without timeline, {what}", set(run()), all_theirs)
        # the one shared with turns "show in timeline" on, naming the one who shares
        admin.request("PUT", f"/partners/{other_user['userId']}", json={"inTimeline": True})
        seen_by_partner: set[str] = set()
        for what, run in searches(admin).items():
            found = set(run())
            seen_by_partner |= found
            probes.expect_none(f"partner in timeline, {what}", found, never)
        if theirs["other-contract"] not in seen_by_partner:
            probes.notes.append("the partner's timeline photo was not found (partner sharing not searched)")
            probes.leaks.append("partner in timeline: the shared timeline photo was never found")
        if patched:
            # a partner's photo is seen, never edited: its refresh is refused as another user's is
            probe_foreign_refresh(admin, library, theirs, probes)
        other.request("DELETE", f"/partners/{me['id']}", expect=(200, 204))

        album = other.request(
            "POST",
            "/albums",
            json={
                "albumName": "合同 shared",
                "assetIds": [theirs["other-contract"]],
                "albumUsers": [{"userId": me["id"], "role": "viewer"}],
            },
        )
        for what, run in searches(admin).items():
            probes.expect_none(f"shared album member, {what}", set(run()), all_theirs)
        in_album = admin.request(
            "POST", "/search/metadata", json={"ocr": SECRET_WORD, "albumIds": [album["id"]], "size": 100}
        )
        found = {str(item["id"]) for item in in_album["assets"]["items"]}
        probes.expect_none(
            "shared album, filter within the album", found, all_theirs - {theirs["other-contract"]}
        )

        probe_shared_links(other, album["id"], theirs, all_theirs, probes)
        probe_api_keys(admin, library, probes, refresh_jobs=patched, gateway=gateway)
        if patched:
            probe_foreign_refresh(admin, library, theirs, probes)
    finally:
        other.close()
    if probes.leaks:
        raise LeakFound(f"{len(probes.leaks)} leaks in {probes.count} probes: " + "; ".join(probes.leaks))
    return f"{probes.count} probes, 0 leaks" + (f" ({'; '.join(probes.notes)})" if probes.notes else "")


def upload_other_library(other: ImmichClient, library: Library, image_dir: Path) -> dict[str, str]:
    paths = images.write_all(image_dir, OTHER_SCENES)
    theirs = {scene.name: str(other.upload(paths[scene.name])["id"]) for scene in OTHER_SCENES}
    library.wait_processed(list(theirs.values()))
    other.request("PUT", "/assets", json={"ids": [theirs["other-archived"]], "visibility": "archive"})
    other.request("POST", "/auth/pin-code", json={"pinCode": "135790"})
    other.request("POST", "/auth/session/unlock", json={"pinCode": "135790"})
    other.request("PUT", "/assets", json={"ids": [theirs["other-locked"]], "visibility": "locked"})
    other.request("POST", "/auth/session/lock")
    other.request("DELETE", "/assets", json={"ids": [theirs["other-trash"]], "force": False})
    return theirs


def probe_shared_links(
    other: ImmichClient, album_id: str, theirs: dict[str, str], all_theirs: set[str], probes: Probes
) -> None:
    """A shared-link visitor may not search at all, beyond the one album a link shares."""
    single = other.request(
        "POST", "/shared-links", json={"type": "INDIVIDUAL", "assetIds": [theirs["other-contract"]]}
    )
    album_link = other.request("POST", "/shared-links", json={"type": "ALBUM", "albumId": album_id})
    visitor = ImmichClient(other.base_url)
    try:
        for link in (single, album_link):
            for what, run in searches(visitor, {"key": link["key"]}).items():
                try:
                    found = set(run())
                except ImmichError as error:
                    probes.count += 1
                    if error.status >= 500:
                        probes.leaks.append(f"shared link ({link['type']}), {what}: HTTP {error.status}")
                    continue
                probes.expect_none(f"shared link ({link['type']}), {what}", found, all_theirs)
        try:
            within = visitor.request(
                "POST",
                "/search/metadata",
                json={"ocr": SECRET_WORD, "albumIds": [album_id], "size": 100},
                params={"key": album_link["key"]},
            )
        except ImmichError as error:
            # Immich v2 refuses a shared link on /search/metadata at all ("non-shared route"): nothing leaks
            probes.refused("album link, filter within its album", error)
        else:
            found = {str(item["id"]) for item in within["assets"]["items"]}
            probes.expect_none(
                "album link, filter within its album", found, all_theirs - {theirs["other-contract"]}
            )
    finally:
        visitor.close()


def with_api_key(client: ImmichClient, permissions: list[str]) -> ImmichClient:
    key = client.request(
        "POST", "/api-keys", json={"name": f"e2e {'+'.join(permissions)}", "permissions": permissions}
    )
    keyed = ImmichClient(client.base_url)
    keyed.http.headers["x-api-key"] = str(key["secret"])
    return keyed


def status_of(call: Callable[[], Any]) -> int:
    try:
        call()
    except ImmichError as error:
        return error.status
    return 200


def job_status(client: ImmichClient, asset_ids: list[str], job: str) -> int:
    """The HTTP status POST /assets/jobs answers for `job` on `asset_ids`."""
    return status_of(lambda: client.asset_jobs(asset_ids, job))


def probe_api_keys(
    admin: ImmichClient, library: Library, probes: Probes, *, refresh_jobs: bool, gateway: bool = False
) -> None:
    """A key lacking a permission is answered as upstream answers it (4xx from v1.137); it queues nothing.

    Behind the gateway a refresh needs a key Immich names a user for and lets edit the assets (user.read,
    asset.update), where Immich's own asset jobs ask only job.create of a key: refusing such a key is stricter
    than upstream, reported as a note; accepting a key upstream refuses is a leak either way.
    """
    mine = next(iter(library.assets.values()))
    no_read = with_api_key(admin, ["album.read"])
    read_only = with_api_key(admin, ["asset.read"])
    try:
        jobs_only, jobs_label = with_api_key(admin, ["job.create"]), "job.create only"
    except ImmichError as error:
        # Immich has no job permissions before v1.137: a key with none of the asset permissions stands in
        if error.status != 400:
            raise
        jobs_only, jobs_label = with_api_key(admin, ["album.read"]), "album.read only (no job.create yet)"
    try:
        # upstream's own search by file name on the same endpoint: what that key may do in this release
        # (Immich requires asset.read of a key's searches from v1.137; before, any key of the user may search)
        upstream = status_of(
            lambda: no_read.request("POST", "/search/metadata", json={"originalFileName": "e2e", "size": 1})
        )
        for what, run in searches(no_read).items():
            status = status_of(run)
            probes.count += 1
            if 400 <= upstream < 500 and not 400 <= status < 500:
                probes.leaks.append(f"API key without asset.read, {what}: HTTP {status}")
            elif status != upstream and not 400 <= status < 500:
                probes.leaks.append(f"API key without asset.read, {what}: HTTP {status}, upstream {upstream}")
        if upstream < 400:
            probes.notes.append("keys search without asset.read in this release, upstream's search as ours")
        if not refresh_jobs:
            return
        before = library.ocr_done_at().get(mine)
        accepted = False
        for client, label in ((read_only, "asset.read only"), (jobs_only, jobs_label)):
            # each refresh job must answer exactly as the upstream job of the same kind does for that key
            for job, upstream_job in (
                ("refresh-ocr", "refresh-metadata"),
                ("refresh-smart-search", "refresh-faces"),
            ):
                ours = job_status(client, [mine], job)
                upstream = job_status(client, [mine], upstream_job)
                accepted |= job == "refresh-ocr" and ours < 400
                probes.count += 1
                if gateway and 400 <= ours < 500 and upstream < 400:
                    probes.notes.append(f"{label}: {job} refused ({ours}) where {upstream_job} ran")
                elif ours != upstream:
                    probes.leaks.append(
                        f"API key {label}: {job} answered {ours}, upstream's {upstream_job} {upstream}"
                    )
        library.client.wait_for_queues(("ocr", "smartSearch"), timeout=120)
        if not accepted and library.ocr_done_at().get(mine) != before:
            probes.leaks.append("every API key was refused refresh-ocr, yet OCR ran again")
    finally:
        for client in (no_read, read_only, jobs_only):
            client.close()


def probe_foreign_refresh(
    admin: ImmichClient, library: Library, theirs: dict[str, str], probes: Probes
) -> None:
    """A refresh job naming another user's photo is refused and re-runs nothing."""
    before = {asset: library.ocr_done_at().get(asset) for asset in theirs.values()}
    clip_before = library.smart_search_versions()
    for job in ("refresh-ocr", "refresh-smart-search"):
        status = job_status(admin, [theirs["other-contract"]], job)
        probes.count += 1
        if not 400 <= status < 500:
            probes.leaks.append(f"{job} of another user's photo answered HTTP {status}")
    library.client.wait_for_queues(("ocr", "smartSearch"), timeout=120)
    after = {asset: library.ocr_done_at().get(asset) for asset in theirs.values()}
    if after != before:
        probes.leaks.append("OCR re-ran for another user's photo")
    if {a: v for a, v in library.smart_search_versions().items() if a in theirs.values()} != {
        a: v for a, v in clip_before.items() if a in theirs.values()
    }:
        probes.leaks.append("smart search re-ran for another user's photo")
