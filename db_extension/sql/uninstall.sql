-- Remove everything install.sql created: the immich_aio_* triggers on asset_ocr and asset, schema immich_aio,
-- and the zhparser extension if install.sql created it; and the record of the migration that immich-aio
-- releases before the start-up installer left in kysely_migrations (stock Immich refuses to start while a
-- migration it does not know is recorded). Immich's own tables and rows are untouched.
-- Safe to run again and on a database where nothing was installed.

DO $uninstall$
DECLARE
  drop_zhparser boolean := false;
BEGIN
  IF to_regclass('immich_aio.meta') IS NOT NULL THEN
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM immich_aio.meta WHERE key = ''created_zhparser'')' INTO drop_zhparser;
  END IF;
  IF to_regclass('asset_ocr') IS NOT NULL THEN
    DROP TRIGGER IF EXISTS immich_aio_ocr_insert ON asset_ocr;
    DROP TRIGGER IF EXISTS immich_aio_ocr_update ON asset_ocr;
    DROP TRIGGER IF EXISTS immich_aio_ocr_delete ON asset_ocr;
    DROP TRIGGER IF EXISTS immich_aio_ocr_truncate ON asset_ocr;
  END IF;
  IF to_regclass('asset') IS NOT NULL THEN
    DROP TRIGGER IF EXISTS immich_aio_asset_visibility ON asset;
  END IF;
  DROP SCHEMA IF EXISTS immich_aio CASCADE;
  IF to_regclass('kysely_migrations') IS NOT NULL THEN
    DELETE FROM kysely_migrations WHERE name LIKE '%-ImmichAio%';
  END IF;
  IF drop_zhparser THEN
    DROP EXTENSION IF EXISTS zhparser;
  END IF;
END
$uninstall$;
