-- Remove everything install.sql created: the immich_aio_* triggers on Immich's tables, schema immich_aio,
-- and the zhparser extension if install.sql created it; and the record of the migration that immich-aio
-- releases before the start-up installer left in kysely_migrations (stock Immich refuses to start while a
-- migration it does not know is recorded). Immich's own tables and rows are untouched.
-- Safe to run again and on a database where nothing was installed.

DO $uninstall$
DECLARE
  drop_zhparser boolean := false;
  trigger_row record;
BEGIN
  IF to_regclass('immich_aio.meta') IS NOT NULL THEN
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM immich_aio.meta WHERE key = ''created_zhparser'')' INTO drop_zhparser;
  END IF;
  -- every immich_aio_* trigger, on whichever table it is (a table may have been renamed since)
  FOR trigger_row IN
    SELECT t.tgname, t.tgrelid::regclass AS relation FROM pg_trigger t
    WHERE t.tgname LIKE 'immich|_aio|_%' ESCAPE '|' AND NOT t.tgisinternal
  LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', trigger_row.tgname, trigger_row.relation);
  END LOOP;
  DROP SCHEMA IF EXISTS immich_aio CASCADE;
  IF to_regclass('kysely_migrations') IS NOT NULL THEN
    DELETE FROM kysely_migrations WHERE name LIKE '%-ImmichAio%';
  END IF;
  IF drop_zhparser THEN
    DROP EXTENSION IF EXISTS zhparser;
  END IF;
END
$uninstall$;
