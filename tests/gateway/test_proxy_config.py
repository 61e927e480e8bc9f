"""`immich-aio gateway config nginx|caddy|traefik`: the nginx snippet serves the gateway in a real nginx."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner
from websockets.sync.client import connect

from e2e.ports import PortAllocator
from e2e.services import write_nginx_conf
from gateway.proxy_config import render
from immich_aio.cli import app
from tests.gateway.conftest import Stack
from testsupport.immich_standin import THUMBNAIL

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def nginx_in_front(stack: Stack, tmp_path: Path) -> Iterator[str]:
    """A real nginx (install.sh installs it) running the printed snippet in front of the gateway."""
    port = PortAllocator().take()
    snippet = render("nginx", gateway=stack.gateway.removeprefix("http://"), listen=f"127.0.0.1:{port}")
    conf = write_nginx_conf(tmp_path, snippet)
    test = subprocess.run([NGINX, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    process = subprocess.Popen([NGINX, "-c", str(conf)], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(url + "/api/server/version", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_nginx_snippet_serves_search_ranges_and_websockets(stack: Stack, nginx_in_front: str) -> None:
    alice = stack.library.user()
    receipt = stack.library.asset(alice)
    stack.library.write_ocr(receipt, ["增值税普通发票"])
    headers = {"x-api-key": alice}
    search = httpx.post(f"{nginx_in_front}/api/search/smart", json={"query": "ocr:发票"}, headers=headers)
    part = httpx.get(f"{nginx_in_front}/api/assets/x/thumbnail", headers={**headers, "range": "bytes=5-9"})
    assert [item["id"] for item in search.json()["assets"]["items"]] == [receipt]
    assert part.status_code == 206 and part.content == THUMBNAIL[5:10]
    socket_url = nginx_in_front.replace("http://", "ws://") + "/api/socket.io/"
    with connect(socket_url, additional_headers=headers) as socket:
        assert socket.recv(timeout=10) == f"hello {alice}"


def test_every_snippet_is_printed_and_an_unknown_proxy_is_refused() -> None:
    runner = CliRunner()
    caddy = runner.invoke(app, ["gateway", "config", "caddy", "--gateway", "gw:2283", "--site", "photos.lan"])
    traefik = runner.invoke(app, ["gateway", "config", "traefik", "--gateway", "gw:2283"])
    unknown = runner.invoke(app, ["gateway", "config", "apache"])
    assert caddy.exit_code == 0 and "photos.lan {" in caddy.output and "reverse_proxy gw:2283" in caddy.output
    assert traefik.exit_code == 0
    service = yaml.safe_load(traefik.output)["http"]["services"]["immich-aio-gateway"]
    assert service["loadBalancer"]["servers"] == [{"url": "http://gw:2283"}]
    assert unknown.exit_code == 2 and "unknown proxy" in unknown.output
