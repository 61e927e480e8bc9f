"""What immich-aio's leftovers cost a stock Immich's writes: the same writes on three databases; prints JSON.

Usage: python -m bench.db_leftover_cost [--assets 2000] [--rounds 5]

Three databases of one throwaway PostgreSQL 15 + pgvector cluster, each with Immich's tables:
  * stock:        nothing of immich-aio (what Immich meets without it);
  * left behind:  immich-aio installed by the patched server ('patched-server' mode), written by a
                  connection that is not the patched server's (what a stock Immich meets after a switch);
  * patched:      the same, written as the patched server (its triggers run: the cost of the feature).
Each round writes, per asset and in Immich's own statement shapes: the OCR upsert (delete + insert of the
boxes in one statement), the job-status upsert with ocrAt, a metadata update of the asset row, a
visibility change, and finally the deletion of the asset. Rounds alternate the databases, so drift of a
shared machine lands on all three; the figures are the median per-statement microseconds over rounds.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from typing import Any

import psycopg

from db_extension.installer import install
from e2e.postgres import EmbeddedPostgres
from testsupport.immich_schema import create_immich_schema
from testsupport.synthetic import ocr_line

KINDS = ("ocr upsert", "job status", "asset update", "visibility", "asset delete")


def prepare(cluster: EmbeddedPostgres, name: str, installed: bool) -> str:
    with psycopg.connect(cluster.dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    dsn = f"postgresql://{cluster.user}@127.0.0.1:{cluster.port}/{name}"
    with psycopg.connect(dsn) as conn:
        create_immich_schema(conn, with_clip_index=False)
    if installed:
        install(dsn, sync_mode="patched-server")
    return dsn


def one_round(conn: Any, owner: str, assets: int, rng: random.Random) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {kind: [] for kind in KINDS}
    ids = [str(uuid.uuid4()) for _ in range(assets)]
    for asset in ids:
        conn.execute('INSERT INTO asset (id, "ownerId") VALUES (%s, %s)', (asset, owner))

    def timed(kind: str, sql: str, params: tuple[Any, ...] | list[Any]) -> None:
        started = time.perf_counter()
        conn.execute(sql, params)
        timings[kind].append(time.perf_counter() - started)

    for asset in ids:
        lines = [ocr_line(rng) for _ in range(rng.randint(3, 10))]
        rows = ", ".join("(%s::uuid, 0.1, 0.1, 0.9, 0.1, 0.9, 0.2, 0.1, 0.2, 0.9, 0.9, %s)" for _ in lines)
        params: list[Any] = [asset]
        for line in lines:
            params += [asset, line]
        timed(
            "ocr upsert",
            'WITH deleted AS (DELETE FROM asset_ocr WHERE "assetId" = %s::uuid) '
            'INSERT INTO asset_ocr ("assetId", x1, y1, x2, y2, x3, y3, x4, y4, "boxScore", "textScore", '
            f"text) VALUES {rows}",
            params,
        )
        timed(
            "job status",
            'INSERT INTO asset_job_status ("assetId", "ocrAt") VALUES (%s, now()) '
            'ON CONFLICT ("assetId") DO UPDATE SET "ocrAt" = excluded."ocrAt"',
            (asset,),
        )
        timed(
            "asset update",
            'UPDATE asset SET "updatedAt" = now(), "isFavorite" = NOT "isFavorite" WHERE id = %s',
            (asset,),
        )
        timed("visibility", "UPDATE asset SET visibility = 'archive' WHERE id = %s", (asset,))
    for asset in ids:
        timed("asset delete", "DELETE FROM asset WHERE id = %s", (asset,))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--assets", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    setups = {"stock": ("cost_stock", False, None), "left behind": ("cost_left", True, None),
              "patched": ("cost_patched", True, "immich-aio")}  # fmt: skip
    per_round: dict[str, dict[str, list[float]]] = {name: {kind: [] for kind in KINDS} for name in setups}
    with EmbeddedPostgres(database="cost_admin") as cluster:
        connections = {}
        for name, (database, installed, app) in setups.items():
            dsn = prepare(cluster, database, installed)
            connections[name] = psycopg.connect(dsn, autocommit=True, application_name=app or "immich")
        for conn in connections.values():
            conn.execute('INSERT INTO "user" (id, email) VALUES (%s, %s)', (str(uuid.UUID(int=1)), "bench@x"))
        for round_number in range(args.rounds):
            order = list(setups)
            random.Random(round_number).shuffle(order)
            for name in order:
                timings = one_round(
                    connections[name], str(uuid.UUID(int=1)), args.assets, random.Random(round_number)
                )
                for kind, values in timings.items():
                    per_round[name][kind].append(statistics.median(values))
        for conn in connections.values():
            conn.close()
    figures: dict[str, Any] = {"assets_per_round": args.assets, "rounds": args.rounds, "median_us": {}}
    for name, kinds in per_round.items():
        figures["median_us"][name] = {kind: round(1e6 * statistics.median(v), 1) for kind, v in kinds.items()}
    stock = figures["median_us"]["stock"]
    figures["left_behind_vs_stock_pct"] = {
        kind: round(100 * (figures["median_us"]["left behind"][kind] / stock[kind] - 1), 1) for kind in KINDS
    }
    figures["patched_vs_stock_pct"] = {
        kind: round(100 * (figures["median_us"]["patched"][kind] / stock[kind] - 1), 1) for kind in KINDS
    }
    print(json.dumps(figures, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
