-- immich-aio OCR storage for the Immich releases without OCR of their own (before v2.2.0)
--
-- The patched server of those releases runs this before install.sql at every start (idempotent). It keeps
-- OCR in schema immich_aio_ocr, in the shape Immich v2.2 gave its own storage, so that nothing collides with
-- what upstream adds in v2.2.0 (the tables asset_ocr and ocr_search, asset_job_status."ocrAt", their
-- migrations): a stock or patched Immich v2.2+ opens the library, and a patched one carries the text over
-- into its own asset_ocr (install.sql, "carry-over") instead of reading every photo again.
--
--   immich_aio_ocr.asset_ocr       one row per text box: corners normalised to 0..1, box and text scores, text
--   immich_aio_ocr.asset_ocr_job   the asset's last OCR run ("ocrAt"), as asset_job_status."ocrAt" is in v2.2
--
-- A schema of its own, apart from immich_aio: immich_aio holds what can be rebuilt (the search documents,
-- the scoring), this holds what the photos' OCR produced. `immich-aio db uninstall` drops immich_aio and
-- keeps this, so leaving the search extension never throws away a library's OCR.
--
-- Both follow the asset: the foreign keys cascade on delete, whichever server deletes it. A rename of the
-- asset table (assets -> asset in v1.136) or of its primary key keeps them; no upstream migration drops
-- that key.

CREATE SCHEMA IF NOT EXISTS immich_aio_ocr;

DO $storage$
DECLARE
  asset_table regclass := coalesce(to_regclass('asset'), to_regclass('assets'));
BEGIN
  IF asset_table IS NULL THEN
    RAISE EXCEPTION 'immich_aio: Immich''s asset table (asset or assets) not found in search_path %',
      current_setting('search_path');
  END IF;
  IF to_regclass('immich_aio_ocr.asset_ocr') IS NULL THEN
    EXECUTE format($sql$
      CREATE TABLE immich_aio_ocr.asset_ocr (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "assetId" uuid NOT NULL REFERENCES %s (id) ON UPDATE CASCADE ON DELETE CASCADE,
        x1 real NOT NULL, y1 real NOT NULL, x2 real NOT NULL, y2 real NOT NULL,
        x3 real NOT NULL, y3 real NOT NULL, x4 real NOT NULL, y4 real NOT NULL,
        "boxScore" real NOT NULL,
        "textScore" real NOT NULL,
        text text NOT NULL
      )$sql$, asset_table);
    CREATE INDEX asset_ocr_asset_id_idx ON immich_aio_ocr.asset_ocr ("assetId");
  END IF;
  IF to_regclass('immich_aio_ocr.asset_ocr_job') IS NULL THEN
    EXECUTE format($sql$
      CREATE TABLE immich_aio_ocr.asset_ocr_job (
        "assetId" uuid PRIMARY KEY REFERENCES %s (id) ON UPDATE CASCADE ON DELETE CASCADE,
        "ocrAt" timestamptz
      )$sql$, asset_table);
  END IF;
END
$storage$;
