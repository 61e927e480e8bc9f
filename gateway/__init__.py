"""immich-aio gateway: Chinese search in front of an unmodified Immich server."""
