"""immich-aio: Chinese search for Immich (the product's root package; its CLI mounts every part)."""
