"""End-to-end proof: a real patched Immich, ml_service and PostgreSQL together, driven by API and browser.

`immich-aio e2e` patches and builds an Immich release, starts every service as a real process on loopback,
drives Immich through its public API and a headless Chromium, and writes a report (JSON + markdown +
screenshots). See docs/e2e.md.
"""
