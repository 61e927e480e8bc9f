"""Reverse-proxy snippets (nginx, Caddy, Traefik) that put the gateway where Immich's port was."""

from __future__ import annotations

from importlib import resources
from typing import Literal, get_args

import jinja2

ProxyKind = Literal["nginx", "caddy", "traefik"]
PROXY_KINDS: tuple[str, ...] = get_args(ProxyKind)
_TEMPLATES: dict[str, str] = {"nginx": "nginx.conf.j2", "caddy": "caddy.j2", "traefik": "traefik.yml.j2"}


def render(kind: ProxyKind, *, gateway: str, listen: str = "80", site: str = "photos.example.com") -> str:
    """The snippet for one reverse proxy, forwarding to the gateway at `gateway` (host:port)."""
    text = resources.files("gateway").joinpath("templates", _TEMPLATES[kind]).read_text(encoding="utf-8")
    template = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True).from_string(
        text
    )
    return template.render(gateway=gateway, listen=listen, site=site, entrypoint="websecure")
