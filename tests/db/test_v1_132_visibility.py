"""Immich v1.132 keeps an asset's visibility in two flags ("isArchived", "isVisible"); v1.133's migration
replaces them with the visibility column. install.sql rendered for v1.132 (visibility_flags) reads the flags
without depending on them, so a library that ran patched v1.132 upgrades to stock or patched v1.133+ with
every upstream migration succeeding, and search keeps hiding what Immich hides throughout."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from db_extension.installer import (
    detect_asset_table,
    detect_storage,
    detect_visibility_flags,
    install,
    install_script,
    sql_text,
)
from e2e.postgres import EmbeddedPostgres
from tests.db.conftest import new_database
from tests.db.test_v1_storage import PATCHED, TO_V2_1, V1Library

# The slice create_immich_schema() builds (v3.1's asset table), reshaped as Immich v1.132.3 has it: the table
# is "assets", and the flags stand where v1.133 puts the visibility column (there is no locked folder).
TO_V1_132 = """
ALTER TABLE asset RENAME TO assets;
ALTER TABLE assets DROP COLUMN visibility;
DROP TYPE asset_visibility_enum;
ALTER TABLE assets ADD COLUMN "isArchived" boolean NOT NULL DEFAULT false;
ALTER TABLE assets ADD COLUMN "isVisible" boolean NOT NULL DEFAULT true;
"""

# The column changes of Immich v1.133.0's migrations, statement by statement as upstream runs them
# (server/src/schema/migrations/1745902563899-AddAssetVisibilityColumn.ts, then
# 1746844028242-AddLockedVisibilityEnum.ts).
V1_133_MIGRATION = (
    "CREATE TYPE \"asset_visibility_enum\" AS ENUM ('archive','timeline','hidden');",
    """ALTER TABLE "assets"
    ADD "visibility" asset_visibility_enum NOT NULL DEFAULT 'timeline';""",
    """
    UPDATE "assets"
    SET "visibility" = CASE
                        WHEN "isArchived" THEN 'archive'::asset_visibility_enum
                        WHEN "isVisible" THEN 'timeline'::asset_visibility_enum
                        ELSE 'hidden'::asset_visibility_enum
                      END;
  """,
    'ALTER TABLE "assets" DROP COLUMN "isVisible";',
    'ALTER TABLE "assets" DROP COLUMN "isArchived";',
    "ALTER TYPE \"asset_visibility_enum\" ADD VALUE IF NOT EXISTS 'locked';",
)


class V132Library(V1Library):
    """Writes assets as Immich v1.132 does: visibility in the "isArchived" / "isVisible" flags."""

    def flagged_asset(self, owner: str, *, archived: bool = False, visible: bool = True) -> str:
        asset_id = str(uuid.uuid4())
        self.conn.execute(
            'INSERT INTO assets (id, "ownerId", "isArchived", "isVisible") VALUES (%s, %s, %s, %s)',
            (asset_id, owner, archived, visible),
        )
        return asset_id

    def hybrid(self, text: str, user_ids: list[str]) -> set[str]:
        rows = self.conn.execute(
            'SELECT "assetId"::text FROM immich_aio.search_hybrid(%s, %s::vector, %s::uuid[])',
            (text, "[" + ",".join(["0.1"] * 512) + "]", user_ids),
        ).fetchall()
        return {row[0] for row in rows}


def column_dependents(conn: Any, columns: tuple[str, ...]) -> list[str]:
    """Objects that PostgreSQL records as depending on these columns of "assets", other than the columns'
    own defaults (which go with them)."""
    rows = conn.execute(
        """
        SELECT pg_describe_object(d.classid, d.objid, d.objsubid)
        FROM pg_depend d
        JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
        WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = 'assets'::regclass
          AND a.attname = ANY (%s) AND d.classid <> 'pg_attrdef'::regclass
        """,
        (list(columns),),
    ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture(params=["always", "patched-server"])
def v132(request: pytest.FixtureRequest, pg_cluster: EmbeddedPostgres) -> Iterator[tuple[str, V132Library]]:
    """An Immich v1.132 database as the patched server leaves it at start: OCR storage, then install.sql
    (in 'always' mode the triggers also run for the stock server's connections, as during its migrations)."""
    with new_database(pg_cluster, installed=False) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(TO_V2_1)
            conn.execute(TO_V1_132)
            conn.execute(sql_text("ocr_storage.sql"))
            assert detect_asset_table(conn) == "assets"
            assert detect_storage(conn) == "immich_aio_ocr"
            assert detect_visibility_flags(conn, "assets")
        install(dsn, sync_mode=request.param)
        with psycopg.connect(dsn, autocommit=True, application_name=PATCHED) as conn:
            yield dsn, V132Library(conn)


def test_the_v1_132_render_reads_the_flags_and_no_other_render_changes() -> None:
    flags = install_script("immich_aio_ocr", "assets", visibility_flags=True)
    column = install_script("immich_aio_ocr", "assets")
    assert "CREATE OR REPLACE FUNCTION immich_aio.asset_visibility(asset jsonb)" in flags
    assert "asset_visibility(" not in column and "isArchived" not in column
    assert "a.visibility::text" in column and "a.visibility" not in flags
    # the flags are named inside the JSON reader only, never as a column of the asset table
    code = "\n".join(line for line in flags.splitlines() if not line.lstrip().startswith("--"))
    assert not re.search(r'(\ba|OLD|NEW|assets)\."?is(Archived|Visible)', code)
    assert "'isVisible'" in code and "'isArchived'" in code
    assert install_script("immich_aio_ocr", "assets", visibility_flags=False) == column


def test_search_hides_what_v1_132_hides(v132: tuple[str, V132Library]) -> None:
    _, library = v132
    owner = library.user()
    shown = library.flagged_asset(owner)
    archived = library.flagged_asset(owner, archived=True)
    hidden = library.flagged_asset(owner, visible=False)  # e.g. the video half of a live photo
    for asset in (shown, archived, hidden):
        library.write_ocr(asset, ["增值税专用发票"])
        library.embed(asset, [0.1] * 512)
    # archived photos are searchable, as on v1.133+ ('archive'); hidden ones are not
    assert sorted(library.ocr_search("发票", [owner])) == sorted([shown, archived])
    assert library.hybrid("发票", [owner]) == {shown, archived}
    library.conn.execute('UPDATE assets SET "isVisible" = false WHERE id = %s', (shown,))
    assert library.ocr_search("发票", [owner]) == [archived]
    library.conn.execute('UPDATE assets SET "isVisible" = true, "deletedAt" = now() WHERE id = %s', (shown,))
    assert library.ocr_search("发票", [owner]) == [archived]
    library.conn.execute('UPDATE assets SET "deletedAt" = NULL WHERE id = %s', (shown,))
    assert sorted(library.ocr_search("发票", [owner])) == sorted([shown, archived])


def test_nothing_of_ours_depends_on_the_flags(v132: tuple[str, V132Library]) -> None:
    _, library = v132
    assert column_dependents(library.conn, ("isArchived", "isVisible")) == []


def test_v1_133_migrates_the_library_of_patched_v1_132(v132: tuple[str, V132Library]) -> None:
    dsn, library = v132
    meta = "SELECT value FROM immich_aio.meta WHERE key = 'sync_mode'"
    sync_mode = library.conn.execute(meta).fetchone()[0]
    owner = library.user()
    shown = library.flagged_asset(owner)
    archived = library.flagged_asset(owner, archived=True)
    hidden = library.flagged_asset(owner, visible=False)
    gone = library.flagged_asset(owner)
    for asset in (shown, archived, hidden, gone):
        library.write_ocr(asset, ["增值税专用发票"])

    # stock v1.133 starts: its migration runs on a connection of its own, every statement succeeding
    with psycopg.connect(dsn, autocommit=True) as stock:
        for statement in V1_133_MIGRATION:
            stock.execute(statement)
        assert not detect_visibility_flags(stock, "assets")
        # stock v1.133 goes on with the v1.132 functions and triggers still installed: they read the new
        # column (moving a photo to the locked folder or trashing it leaves search), deleting an asset works
        stock.execute("UPDATE assets SET visibility = 'locked' WHERE id = %s", (archived,))
        stock.execute('UPDATE assets SET "updatedAt" = now()')
        stock.execute("DELETE FROM assets WHERE id = %s", (gone,))
    assert library.conn.execute("SELECT count(*) FROM immich_aio_ocr.asset_ocr").fetchone()[0] == 3
    if sync_mode == "always":  # else stock's changes are followed at the patched server's next start
        assert library.ocr_search("发票", [owner]) == [shown]

    # then patched v1.133+ (or `immich-aio db install`) installs its own render over it, and its start-up
    # reconcile brings the documents up to what stock changed
    install(dsn)
    library.conn.execute("SELECT immich_aio.reconcile_begin()")
    while library.conn.execute("SELECT remaining FROM immich_aio.reconcile_step()").fetchone()[0]:
        pass
    assert library.ocr_search("发票", [owner]) == [shown]
    trigger = one_function(library.conn, "on_asset_visibility_change")
    assert "immich_aio.asset_visibility(to_jsonb" not in trigger
    library.conn.execute("UPDATE assets SET visibility = 'archive' WHERE id = %s", (archived,))
    assert sorted(library.ocr_search("发票", [owner])) == sorted([shown, archived])
    library.conn.execute("UPDATE assets SET visibility = 'hidden' WHERE id = %s", (shown,))
    assert library.ocr_search("发票", [owner]) == [archived]
    library.write_ocr(hidden, ["发票"])
    library.conn.execute("UPDATE assets SET visibility = 'timeline' WHERE id = %s", (hidden,))
    assert sorted(library.ocr_search("发票", [owner])) == sorted([archived, hidden])


def one_function(conn: Any, name: str) -> str:
    return str(conn.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", (name,)).fetchone()[0])
