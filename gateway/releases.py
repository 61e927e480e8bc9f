"""Which Immich releases the gateway serves, and where their search API changed (no dependencies)."""

#: The first release with OCR (tables asset_ocr and ocr_search): the oldest the gateway can serve.
OLDEST_SERVED = (2, 2, 0)
#: The first release whose search takes `filter`, `orderBy` and `cursor` (known from @immich/sdk 3.2.2).
FILTER_API_SINCE = (3, 2, 0)
