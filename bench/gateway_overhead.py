"""What the gateway adds: a thumbnail GET through it vs direct, its `ocr:` search vs the SQL alone (JSON).

Usage: python -m bench.gateway_overhead [--requests 500] [--assets 2000]

One throwaway PostgreSQL 15 + pgvector cluster with Immich's tables and `--assets` assets carrying synthetic
Chinese OCR text, the stand-in Immich API (testsupport/immich_standin.py: the real server needs an Immich
build, see docs/gateway.md for figures in front of one) and `immich-aio gateway` in front of it, each its
own process on loopback (as deployed: no interpreter shared with the client).
Requests alternate between the paths, one at a time, so drift of a shared machine lands on both:

* pass-through: `GET /api/assets/{id}/thumbnail` (64 KiB) direct to the stand-in vs through the gateway;
* search: `ocr:` through the gateway (SQL ranking + Immich's read-back) vs `immich_aio.search_ocr` alone.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from e2e.ports import PortAllocator
from e2e.postgres import EmbeddedPostgres
from e2e.supervisor import ProcessSpec, Supervisor, http_probe
from testsupport.immich_schema import create_immich_schema
from testsupport.synthetic import ocr_line

WORDS = ("发票", "出口", "禁止吸烟", "停车场", "营业时间", "电梯")


def fill(dsn: str, assets: int, rng: random.Random) -> str:
    owner = str(uuid.uuid4())
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute('INSERT INTO "user" (id, email) VALUES (%s, %s)', (owner, f"{owner}@example.com"))
        for _ in range(assets):
            asset = str(uuid.uuid4())
            conn.execute('INSERT INTO asset (id, "ownerId") VALUES (%s, %s)', (asset, owner))
            lines = [ocr_line(rng) for _ in range(rng.randint(2, 6))]
            rows = ", ".join(
                "(%s::uuid, 0.1, 0.1, 0.9, 0.1, 0.9, 0.2, 0.1, 0.2, 0.9, 0.9, %s)" for _ in lines
            )
            conn.execute(
                'INSERT INTO asset_ocr ("assetId", x1, y1, x2, y2, x3, y3, x4, y4, "boxScore", '
                '"textScore", text) VALUES ' + rows,
                [value for line in lines for value in (asset, line)],
            )
    return owner


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50Ms": round(statistics.median(ordered), 3),
        "p95Ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
    }


def run(requests: int, assets: int) -> dict[str, Any]:
    rng = random.Random(7)
    with EmbeddedPostgres(database="gateway_bench") as cluster:
        with psycopg.connect(cluster.dsn) as conn:
            create_immich_schema(conn, with_clip_index=False)
        owner = fill(cluster.dsn, assets, rng)
        immich_port, gateway_port = PortAllocator().take_many(2)
        immich_url, gateway_url = f"http://127.0.0.1:{immich_port}", f"http://127.0.0.1:{gateway_port}"
        standin = [sys.executable, "-m", "uvicorn", "--factory", "testsupport.immich_standin:app_from_env"]
        gateway = [sys.executable, "-m", "immich_aio", "gateway", "--immich-url", immich_url]
        logs = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
        with Supervisor(logs) as supervisor:
            supervisor.start(
                ProcessSpec(
                    "immich",
                    [*standin, "--port", str(immich_port), "--log-level", "warning"],
                    env={"IMMICH_STANDIN_DSN": cluster.dsn},
                    ready=http_probe(f"{immich_url}/api/server/version", contains="major"),
                )
            )
            supervisor.start(
                ProcessSpec(
                    "gateway",
                    [*gateway, "--db-url", cluster.dsn, "--host", "127.0.0.1", "--port", str(gateway_port)],
                    ready=http_probe(f"{gateway_url}/api/server/version", contains="major"),
                )
            )
            with (
                httpx.Client(headers={"x-api-key": owner}, timeout=60) as client,
                psycopg.connect(cluster.dsn, autocommit=True) as conn,
            ):
                thumbnail = "/api/assets/x/thumbnail"
                for _ in range(20):  # warm both paths' connections
                    client.get(immich_url + thumbnail)
                    client.get(gateway_url + thumbnail)
                direct, through = [], []
                for _ in range(requests):
                    direct.append(timed(lambda: client.get(immich_url + thumbnail).raise_for_status()))
                    through.append(timed(lambda: client.get(gateway_url + thumbnail).raise_for_status()))
                sql_only, gateway_search = [], []
                for i in range(max(10, requests // 10)):
                    word = WORDS[i % len(WORDS)]

                    def by_sql(w: str = word) -> None:
                        conn.execute(
                            "SELECT * FROM immich_aio.search_ocr(%s, %s::uuid[], 100, 0)", (w, [owner])
                        ).fetchall()

                    def by_gateway(w: str = word) -> None:
                        client.post(
                            gateway_url + "/api/search/smart", json={"query": f"ocr:{w}"}
                        ).raise_for_status()

                    sql_only.append(timed(by_sql))
                    gateway_search.append(timed(by_gateway))
    direct_summary, through_summary = summary(direct), summary(through)
    return {
        "assets": assets,
        "requests": requests,
        "thumbnailDirect": direct_summary,
        "thumbnailThroughGateway": through_summary,
        "passThroughOverheadP50Ms": round(through_summary["p50Ms"] - direct_summary["p50Ms"], 3),
        "ocrSearchSqlOnly": summary(sql_only),
        "ocrSearchThroughGateway": summary(gateway_search),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--assets", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(run(args.requests, args.assets), indent=2))


if __name__ == "__main__":
    main()
