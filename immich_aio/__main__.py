"""`python -m immich_aio`: the same command as `immich-aio`."""

from immich_aio.cli import app

app()
