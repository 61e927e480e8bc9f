"""`immich-aio db …` against a real database, and the `ocr:` prefix parser."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from db_extension.cli import app
from db_extension.search import parse_query
from tests.db.conftest import Library

runner = CliRunner()


@pytest.mark.parametrize(
    ("raw", "ocr_only", "text"),
    [
        ("ocr:发票", True, "发票"),
        ("OCR:发票", True, "发票"),
        ("Ocr : 发票 ", True, "发票"),
        ("  ocr：发票", True, "发票"),  # full-width colon
        ("ocr:", True, ""),
        ("发票 ocr:", False, "发票 ocr:"),
        ("ocrx:发票", False, "ocrx:发票"),
        ("海边的日落", False, "海边的日落"),
        ("ocr:\x00发票\x00", True, "发票"),
    ],
)
def test_parse_query(raw: str, ocr_only: bool, text: str) -> None:
    parsed = parse_query(raw)
    assert (parsed.ocr_only, parsed.text) == (ocr_only, text)


class _ClipStandIn(BaseHTTPRequestHandler):
    """Answers Immich's CLIP textual request with a fixed unit vector.

    A stand-in for the ML service (whose real model weights cannot be downloaded here); it checks the
    request has Immich's shape so the client side is exercised for real over HTTP.
    """

    requests: list[dict[str, Any]] = []  # noqa: RUF012 - shared log for the test

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body
        )
        assert self.headers["Content-Type"].startswith("multipart/form-data")
        fields = {
            part.get_param("name", header="content-disposition"): part.get_payload(decode=True).decode(
                "utf-8"
            )
            for part in message.iter_parts()
        }
        _ClipStandIn.requests.append({"path": self.path, **fields})
        payload = json.dumps({"clip": json.dumps([1.0] + [0.0] * 511)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ml_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ClipStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_cli_end_to_end(immich_dsn: str, ml_url: str) -> None:
    with psycopg.connect(immich_dsn, autocommit=True) as conn:
        lib = Library(conn)
        me, partner = lib.user(), lib.user()
        conn.execute("INSERT INTO partner VALUES (%s, %s, true)", (partner, me))
        invoice = lib.asset(me)
        lib.write_ocr(invoice, [("增值税发票", 0.2)])
        lib.embed(invoice, [0.0, 1.0] + [0.0] * 510)
        sunset = lib.asset(partner)
        lib.embed(sunset, [1.0] + [0.0] * 511)
        taipei_station = lib.asset(me)  # a Taiwanese sign, in Traditional script
        lib.write_ocr(taipei_station, [("臺北車站", 0.2)])

    result = runner.invoke(app, ["status", "--dsn", immich_dsn, "--json"])
    assert result.exit_code == 3 and json.loads(result.stdout)["installed"] is False

    result = runner.invoke(app, ["install", "--dsn", immich_dsn])
    assert result.exit_code == 0, result.output
    assert "fallback segmenter" in result.stdout

    result = runner.invoke(app, ["status", "--dsn", immich_dsn, "--json"])
    status = json.loads(result.stdout)
    assert result.exit_code == 0 and status["segmenter"] == "fallback" and status["documents"] == 2

    result = runner.invoke(app, ["search", "--dsn", immich_dsn, "--user", me, "--json", "OCR： 发票"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert [hit["assetId"] for hit in hits] == [invoice] and hits[0]["score"] > 0

    # either script finds the other, through the same command
    for query, found in (("ocr:发票", invoice), ("ocr:發票", invoice), ("ocr:台北车站", taipei_station)):
        result = runner.invoke(app, ["search", "--dsn", immich_dsn, "--user", me, "--json", query])
        assert result.exit_code == 0, result.output
        assert [hit["assetId"] for hit in json.loads(result.stdout)] == [found], query

    result = runner.invoke(
        app, ["search", "--dsn", immich_dsn, "--user", me, "--ml-url", ml_url, "--json", "日落"]
    )
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert [hit["assetId"] for hit in hits][:2] == [sunset, invoice]  # the partner's sunset is the CLIP match
    request = _ClipStandIn.requests[-1]
    assert request["path"] == "/predict" and request["text"] == "日落"
    assert json.loads(request["entries"])["clip"]["textual"]["options"]["language"] == "zh"

    result = runner.invoke(
        app,
        ["search", "--dsn", immich_dsn, "--user", me, "--no-partners", "--ml-url", ml_url, "--json", "日落"],
    )
    assert [hit["assetId"] for hit in json.loads(result.stdout)][:1] == [invoice]

    result = runner.invoke(app, ["search", "--dsn", immich_dsn, "--user", me, "ocr:发票"])
    assert result.exit_code == 0 and invoice in result.stdout

    result = runner.invoke(app, ["backfill", "--dsn", immich_dsn, "--restart"])
    assert result.exit_code == 0, result.output
    assert "backfilled 2 assets" in result.stdout

    result = runner.invoke(app, ["uninstall", "--dsn", immich_dsn])
    assert result.exit_code == 0
    result = runner.invoke(app, ["search", "--dsn", immich_dsn, "--user", me, "ocr:发票"])
    assert result.exit_code == 1 and "not installed" in result.output


def test_cli_errors_are_one_clear_line(dsn: str) -> None:
    result = runner.invoke(app, ["status", "--dsn", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"])
    assert result.exit_code == 1 and "cannot connect to the database" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["search", "--dsn", dsn, "--user", "not-a-uuid", "ocr:x"])
    assert result.exit_code == 1 and "UUID" in result.output
    user = "00000000-0000-0000-0000-000000000001"
    result = runner.invoke(app, ["search", "--dsn", dsn, "--user", user, "日落"])
    assert result.exit_code == 1 and "--ml-url" in result.output
    result = runner.invoke(
        app, ["search", "--dsn", dsn, "--user", user, "--ml-url", "http://127.0.0.1:1", "日落"]
    )
    assert result.exit_code == 1 and "cannot reach the ML service" in result.output
    result = runner.invoke(app, ["search", "--dsn", dsn, "--user", user, "--mode", "max", "ocr:x"])
    assert result.exit_code == 1 and "rrf or weighted" in result.output
