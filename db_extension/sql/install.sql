-- immich-aio database extension: ranked Chinese OCR full-text search and hybrid CLIP + OCR ranking.
--
-- One plain-SQL file, safe to run again (every statement is idempotent), with no psql meta-commands,
-- so it runs unchanged from psycopg and from an Immich Kysely migration (sql.raw). Everything lives in
-- schema immich_aio; the only objects outside it are the immich_aio_* triggers on Immich's asset_ocr
-- and asset tables and, when available, the zhparser extension.
--
-- The file contains no backslashes: regular expressions are assembled with chr() so the text can be
-- embedded in any host language's string literal without escaping surprises.
--
-- Needs: Immich >= v2.2 tables asset, asset_ocr, smart_search (pgvector's vector type), PostgreSQL >= 14
-- with UTF8 database encoding. Set immich_aio.skip_backfill = 'on' in the session to skip the initial
-- backfill (then run 'immich-aio db backfill', or immich_aio.reconcile()).
--
-- Session settings read by this file:
--   immich_aio.sync_mode = 'always' (default, 'immich-aio db install') | 'patched-server' (the patched
--     Immich server, which runs this file at every start): who keeps the documents current, see below.
--   immich_aio.skip_backfill = 'on': leave the initial document build to the caller.
--
-- Safe to leave behind for a stock Immich: nothing outside schema immich_aio depends on it, nothing of it
-- depends on a column of Immich's tables (a later upstream migration may alter or drop any of them), and in
-- 'patched-server' mode its triggers do nothing for connections other than the patched server's.

DO $check$
BEGIN
  IF current_setting('server_version_num')::integer < 140000 THEN
    RAISE EXCEPTION 'immich_aio: PostgreSQL 14 or newer is required (found %)', current_setting('server_version');
  END IF;
  IF (SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()) <> 'UTF8' THEN
    RAISE EXCEPTION 'immich_aio: the database encoding must be UTF8';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector') THEN
    RAISE EXCEPTION 'immich_aio: the pgvector extension (vector) is not installed in this database'
      USING HINT = 'Immich installs it on first start; run CREATE EXTENSION vector as a superuser otherwise.';
  END IF;
  IF to_regclass('asset') IS NULL OR to_regclass('smart_search') IS NULL OR to_regclass('asset_ocr') IS NULL
     OR to_regclass('asset_job_status') IS NULL THEN
    RAISE EXCEPTION 'immich_aio: Immich tables asset, asset_job_status, smart_search and asset_ocr not found in search_path %',
      current_setting('search_path')
      USING HINT = 'Point the connection at Immich''s database; Immich v2.2 or newer is required.';
  END IF;
END
$check$;

CREATE SCHEMA IF NOT EXISTS immich_aio;

CREATE TABLE IF NOT EXISTS immich_aio.meta (
  key text PRIMARY KEY,
  value text NOT NULL
);

-- Segmenter choice: zhparser when the server offers it, otherwise the pure-SQL CJK fallback.
-- A previous choice is kept so that re-running the file never changes how stored documents were built.
DO $segmenter$
DECLARE
  chosen text := (SELECT value FROM immich_aio.meta WHERE key = 'segmenter');
BEGIN
  IF chosen IS NULL THEN
    chosen := CASE WHEN EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'zhparser')
                   THEN 'zhparser' ELSE 'fallback' END;
  END IF;
  IF chosen = 'zhparser' THEN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'zhparser') THEN
      CREATE EXTENSION zhparser;
      INSERT INTO immich_aio.meta VALUES ('created_zhparser', 'true') ON CONFLICT (key) DO NOTHING;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
                       WHERE n.nspname = 'immich_aio' AND c.cfgname = 'chinese') THEN
      CREATE TEXT SEARCH CONFIGURATION immich_aio.chinese (PARSER = zhparser);
      -- nouns, verbs, adjectives, idioms, exclamations, fixed expressions, and the rest zhparser tags
      ALTER TEXT SEARCH CONFIGURATION immich_aio.chinese
        ADD MAPPING FOR n, v, a, i, e, l, j, h, k, m, q, t, x, f, s, b, d, o, r, u, y, z WITH simple;
    END IF;
  END IF;
  INSERT INTO immich_aio.meta VALUES ('segmenter', chosen)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
END
$segmenter$;

INSERT INTO immich_aio.meta VALUES ('version', '2')
  ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- Who keeps the documents current. 'always': the triggers run for every writer (an unpatched Immich plus
-- 'immich-aio db search'). 'patched-server': they run only for connections whose application_name is
-- immich_aio.server_application_name() (the patched server tags its connections so), so a stock Immich
-- opened on this database pays nothing for them; the patched server reconciles what changed meanwhile at
-- its next start (immich_aio.reconcile).
DO $sync_mode$
DECLARE
  wanted text := coalesce(nullif(current_setting('immich_aio.sync_mode', true), ''), 'always');
BEGIN
  IF wanted NOT IN ('always', 'patched-server') THEN
    RAISE EXCEPTION 'immich_aio: sync_mode must be always or patched-server, not %', wanted;
  END IF;
  INSERT INTO immich_aio.meta VALUES ('sync_mode', wanted)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
END
$sync_mode$;

CREATE OR REPLACE FUNCTION immich_aio.server_application_name() RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 'immich-aio';

CREATE OR REPLACE FUNCTION immich_aio.version() RETURNS text
  LANGUAGE sql STABLE
  RETURN (SELECT value FROM immich_aio.meta WHERE key = 'version');

CREATE OR REPLACE FUNCTION immich_aio.segmenter() RETURNS text
  LANGUAGE sql STABLE
  RETURN (SELECT value FROM immich_aio.meta WHERE key = 'segmenter');

-- ---------------------------------------------------------------------------------------------------
-- Text normalisation and tokenisation (the pure-SQL CJK segmenter)
-- ---------------------------------------------------------------------------------------------------

-- NFKC folds full-width forms (ＡＢＣ１２３￥ -> ABC123¥); accents are removed by decomposing and
-- dropping combining marks U+0300..U+036F; NFC then recomposes Hangul and kana voicing marks.
CREATE OR REPLACE FUNCTION immich_aio.normalize_text(t text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  RETURN normalize(
    regexp_replace(normalize(lower(normalize(t, NFKC)), NFD), '[' || chr(768) || '-' || chr(879) || ']', '', 'g'),
    NFC);

-- Characters segmented one by one: Han (incl. extensions and compatibility ideographs), kana, Hangul,
-- bopomofo, CJK radicals, and the iteration marks 々 and 〇.
CREATE OR REPLACE FUNCTION immich_aio.cjk_ranges() RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN chr(11904) || '-' || chr(12255)      -- U+2E80..U+2FDF radicals
      || chr(12293) || chr(12295)              -- U+3005 々, U+3007 〇
      || chr(12353) || '-' || chr(12543)       -- U+3041..U+30FF hiragana, katakana
      || chr(12549) || '-' || chr(12591)       -- U+3105..U+312F bopomofo
      || chr(12593) || '-' || chr(12686)       -- U+3131..U+318E Hangul compatibility jamo
      || chr(12704) || '-' || chr(12799)       -- U+31A0..U+31FF bopomofo ext., katakana ext.
      || chr(13312) || '-' || chr(19903)       -- U+3400..U+4DBF extension A
      || chr(19968) || '-' || chr(40959)       -- U+4E00..U+9FFF unified ideographs
      || chr(44032) || '-' || chr(55215)       -- U+AC00..U+D7AF Hangul syllables
      || chr(63744) || '-' || chr(64255)       -- U+F900..U+FAFF compatibility ideographs
      || chr(131072) || '-' || chr(201551);    -- U+20000..U+3134F extensions B..G

CREATE OR REPLACE FUNCTION immich_aio.currency_signs() RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN '$' || chr(162) || chr(163) || chr(165) || chr(8361) || chr(8364);  -- $ ¢ £ ¥ ₩ €

-- Characters that separate tokens: controls and spaces, ASCII punctuation, Latin-1 punctuation and
-- signs, general punctuation, CJK punctuation, variation selectors / small forms, and the specials block.
CREATE OR REPLACE FUNCTION immich_aio.separator_ranges() RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN chr(1) || '-' || chr(47) || ':-@' || chr(91) || '-' || chr(96) || chr(123) || '-' || chr(191)
      || chr(215) || chr(247)
      || chr(8192) || '-' || chr(8303)         -- U+2000..U+206F
      || chr(8448) || '-' || chr(11263)        -- U+2100..U+2BFF letterlike, arrows, math, shapes
      || chr(12288) || '-' || chr(12292) || chr(12296) || '-' || chr(12351)  -- CJK punctuation
      || chr(12539)                            -- U+30FB katakana middle dot
      || chr(65024) || '-' || chr(65135)       -- U+FE00..U+FE6F
      || chr(65279) || chr(65280) || '-' || chr(65295) || chr(65306) || '-' || chr(65312)
      || chr(65339) || '-' || chr(65344) || chr(65371) || '-' || chr(65381)  -- remaining full-width punctuation
      || chr(65520) || '-' || chr(65535);

-- One regular expression, five alternatives, each a capture group:
--   1 a run of CJK characters   2 a currency sign directly before   3 a number (digits, one optional
--   decimal part)   4 a run of other letters (Latin, Cyrillic, …; split from digits and CJK)   5 anything
--   else, which separates phrases.
CREATE OR REPLACE FUNCTION immich_aio.token_pattern() RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN '([' || immich_aio.cjk_ranges() || ']+)'
      || '|([' || immich_aio.currency_signs() || '])?([0-9]+(?:[.][0-9]+)?)'
      || '|([^0-9' || immich_aio.cjk_ranges() || immich_aio.currency_signs() || immich_aio.separator_ranges() || ']+)'
      || '|(.)';

-- Tokens of a text. 'pos' is the token's word position (a CJK run of n characters takes n positions, a
-- number or word takes one; separators take none), 'phrase' counts the separators before the token.
-- Documents index every token; queries use only the ones flagged 'in_query':
--   CJK: unigrams at each character and bigrams at each adjacent pair; a query uses the bigram chain
--        (so 上海南 needs 上海 then 海南 adjacent) or, for a lone character, its unigram.
--   numbers: '35.5' is indexed as 35.5 and 35; '¥35' additionally as ¥35, which a currency query requires.
--   words: lower-cased, accent-free, at most 100 characters.
CREATE OR REPLACE FUNCTION immich_aio.tokens(t text)
  RETURNS TABLE (phrase bigint, pos bigint, token text, in_query boolean)
  LANGUAGE sql IMMUTABLE PARALLEL SAFE  -- not STRICT: PostgreSQL inlines only non-strict SQL set functions
AS $tokens$
  WITH matched AS (
    SELECT n, g[1] AS cjk, g[2] AS currency, g[3] AS num, g[4] AS word, g[5] AS sep
    FROM regexp_matches(immich_aio.normalize_text(coalesce(t, '')), immich_aio.token_pattern(), 'g') WITH ORDINALITY AS m(g, n)
  ), placed AS (
    SELECT cjk, currency, num, left(word, 100) AS word, sep,
           count(sep) OVER w AS phrase,
           1 + coalesce(sum(CASE WHEN cjk IS NOT NULL THEN char_length(cjk) WHEN sep IS NOT NULL THEN 0 ELSE 1 END)
                        OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS start
    FROM matched
    WINDOW w AS (ORDER BY n)
  )
  SELECT p.phrase, p.start + i - 1, substr(p.cjk, i, 1), char_length(p.cjk) = 1
  FROM placed p, generate_series(1, char_length(p.cjk)) AS i
  WHERE p.cjk IS NOT NULL
  UNION ALL
  SELECT p.phrase, p.start + i - 1, substr(p.cjk, i, 2), true
  FROM placed p, generate_series(1, char_length(p.cjk) - 1) AS i
  WHERE p.cjk IS NOT NULL
  UNION ALL
  SELECT p.phrase, p.start, v.token, v.in_query
  FROM placed p,
       LATERAL (VALUES (left(p.num, 100), p.currency IS NULL),
                       (split_part(p.num, '.', 1), false),
                       (p.currency || left(p.num, 100), true),
                       (p.currency || split_part(p.num, '.', 1), false)) AS v(token, in_query)
  WHERE p.num IS NOT NULL AND v.token IS NOT NULL
  UNION ALL
  SELECT p.phrase, p.start, p.word, true
  FROM placed p
  WHERE p.word IS NOT NULL
$tokens$;

-- A tsvector/tsquery lexeme literal for any token.
CREATE OR REPLACE FUNCTION immich_aio.quote_lexeme(token text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  RETURN '''' || replace(replace(token, chr(92), chr(92) || chr(92)), '''', '''''') || '''';

-- Segmenter-specific parts; replaced below when zhparser is in use.
CREATE OR REPLACE FUNCTION immich_aio.segmenter_document(t text) RETURNS tsvector
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  RETURN ''::tsvector;

CREATE OR REPLACE FUNCTION immich_aio.segmenter_query(q text) RETURNS tsquery
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  RETURN NULL::tsquery;

DO $zh$
BEGIN
  IF immich_aio.segmenter() = 'zhparser' THEN
    -- zhparser's words are added next to the fallback's grams: documents gain whole-word lexemes and a
    -- query may match either way, so segmenter quality only adds recall on top of the exact-gram match.
    EXECUTE $f$
      CREATE OR REPLACE FUNCTION immich_aio.segmenter_document(t text) RETURNS tsvector
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        RETURN to_tsvector('immich_aio.chinese'::regconfig, immich_aio.normalize_text(t))
    $f$;
    EXECUTE $f$
      CREATE OR REPLACE FUNCTION immich_aio.segmenter_query(q text) RETURNS tsquery
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        RETURN phraseto_tsquery('immich_aio.chinese'::regconfig, immich_aio.normalize_text(q))
    $f$;
  END IF;
END
$zh$;

-- ---------------------------------------------------------------------------------------------------
-- Documents and queries
-- ---------------------------------------------------------------------------------------------------

-- The document of one OCR text, every position carrying 'weight' (A highest .. D lowest).
CREATE OR REPLACE FUNCTION immich_aio.ocr_document(t text, weight "char") RETURNS tsvector
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN setweight(
    coalesce((SELECT string_agg(immich_aio.quote_lexeme(token) || ':' || least(pos, 16383), ' ')
              FROM immich_aio.tokens(coalesce(t, ''))), '')::tsvector
      || coalesce(immich_aio.segmenter_document(t), ''::tsvector),
    coalesce(weight, 'D'));

CREATE OR REPLACE FUNCTION immich_aio.ocr_document(t text) RETURNS tsvector
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN immich_aio.ocr_document(t, 'D');

-- The query for any user text. Never raises: tokens are quoted lexemes, joined with phrase operators
-- (<N> = distance in positions) inside each separator-free stretch and with & between stretches. Blank,
-- punctuation-only or operator-only text gives an empty query, which matches nothing. At most 64 tokens.
CREATE OR REPLACE FUNCTION immich_aio.gram_query(q text) RETURNS tsquery
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN coalesce((
    SELECT string_agg('(' || phrase_text || ')', ' & ' ORDER BY phrase)
    FROM (
      SELECT phrase,
             string_agg(CASE WHEN previous IS NULL THEN '' ELSE ' <' || (pos - previous) || '> ' END
                        || immich_aio.quote_lexeme(token), '' ORDER BY pos) AS phrase_text
      FROM (
        SELECT phrase, pos, token, lag(pos) OVER (PARTITION BY phrase ORDER BY pos) AS previous
        FROM (SELECT * FROM immich_aio.tokens(left(coalesce(q, ''), 1000)) WHERE in_query
              ORDER BY phrase, pos LIMIT 64) AS limited
      ) AS ordered
      GROUP BY phrase
    ) AS phrases), '')::tsquery;

CREATE OR REPLACE FUNCTION immich_aio.ocr_query(q text) RETURNS tsquery
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  -- each half is built once (a CASE over the calls would run the tokenizers up to three times)
  RETURN (SELECT CASE WHEN numnode(parts.seg) = 0 THEN parts.gram
                      WHEN numnode(parts.gram) = 0 THEN parts.seg
                      ELSE parts.gram || parts.seg END
          FROM (SELECT immich_aio.gram_query(q) AS gram,
                       coalesce(immich_aio.segmenter_query(left(q, 1000)), ''::tsquery) AS seg) AS parts);

-- Relevance in [0, 1): term frequency with positions weighted by line prominence (A = title-sized
-- line), damped by document length (flag 1) and mapped to rank/(rank+1) (flag 32) so it can be mixed
-- with cosine similarity. ts_rank rather than ts_rank_cd: the same quality on the benchmark corpus at
-- about half the cost per matching document, which dominates for very common query terms.
CREATE OR REPLACE FUNCTION immich_aio.ocr_rank(document tsvector, query tsquery) RETURNS real
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN ts_rank('{0.1, 0.25, 0.5, 1.0}'::real[], document, query, 1 | 32);

-- Reciprocal-rank fusion term for a 1-based rank; NULL (not among the candidates) contributes 0.
CREATE OR REPLACE FUNCTION immich_aio.rrf(rank bigint, k integer DEFAULT 60) RETURNS double precision
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE WHEN rank IS NULL THEN 0.0 ELSE 1.0 / (greatest(k, 0) + rank) END;

-- The fused score of one asset. rrf: clip_weight*rrf(clip_rank) + ocr_weight*rrf(ocr_rank).
-- weighted: clip_weight*(1 - cosine distance) + ocr_weight*ocr_score (0 when absent).
CREATE OR REPLACE FUNCTION immich_aio.hybrid_score(
  clip_rank bigint, ocr_rank bigint, clip_distance double precision, ocr_score double precision,
  mode text DEFAULT 'rrf', k integer DEFAULT 60,
  clip_weight double precision DEFAULT 1.0, ocr_weight double precision DEFAULT 1.0
) RETURNS double precision
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE WHEN mode = 'weighted'
    THEN clip_weight * coalesce(1.0 - clip_distance, 0.0) + ocr_weight * coalesce(ocr_score, 0.0)
    ELSE clip_weight * immich_aio.rrf(clip_rank, k) + ocr_weight * immich_aio.rrf(ocr_rank, k)
  END;

-- ---------------------------------------------------------------------------------------------------
-- Per-asset documents, kept in sync with asset_ocr
-- ---------------------------------------------------------------------------------------------------

-- No foreign key to asset: a constraint on Immich's table would cost every asset deletion a lookup here
-- and could block an upstream migration of asset.id. A deleted asset's boxes go with it (Immich's own
-- cascade), which removes the document through the triggers below, or at the next reconcile.
CREATE TABLE IF NOT EXISTS immich_aio.asset_ocr_document (
  "assetId" uuid PRIMARY KEY,
  document tsvector NOT NULL,
  "boxCount" integer NOT NULL DEFAULT 0,
  "updatedAt" timestamptz NOT NULL DEFAULT clock_timestamp()
);
DO $drop_fk$
DECLARE
  constraint_name name;
BEGIN
  FOR constraint_name IN
    SELECT c.conname FROM pg_constraint c
    WHERE c.conrelid = 'immich_aio.asset_ocr_document'::regclass AND c.contype = 'f'
  LOOP
    EXECUTE format('ALTER TABLE immich_aio.asset_ocr_document DROP CONSTRAINT %I', constraint_name);
  END LOOP;
END
$drop_fk$;
CREATE INDEX IF NOT EXISTS asset_ocr_document_gin ON immich_aio.asset_ocr_document USING gin (document);

-- Whether Immich shows an asset in its owner's searches at all: not trashed, not in the locked folder,
-- not hidden (e.g. the video half of a live photo). Archived assets are searchable.
CREATE OR REPLACE FUNCTION immich_aio.searchable(visibility text, deleted_at timestamptz) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN deleted_at IS NULL AND coalesce(visibility, '') NOT IN ('locked', 'hidden');

-- The owner and searchability of each document's asset, copied from asset (and kept current by the
-- immich_aio_asset_visibility trigger) so OCR candidates are filtered without a join per matching
-- document: the join to asset cost more than the ranking itself for common query terms.
ALTER TABLE immich_aio.asset_ocr_document ADD COLUMN IF NOT EXISTS "ownerId" uuid;
ALTER TABLE immich_aio.asset_ocr_document ADD COLUMN IF NOT EXISTS searchable boolean;
UPDATE immich_aio.asset_ocr_document d
  SET "ownerId" = a."ownerId", searchable = immich_aio.searchable(a.visibility::text, a."deletedAt")
  FROM asset a
  WHERE a.id = d."assetId" AND (d."ownerId" IS NULL OR d.searchable IS NULL);
ALTER TABLE immich_aio.asset_ocr_document ALTER COLUMN "ownerId" SET NOT NULL;
ALTER TABLE immich_aio.asset_ocr_document ALTER COLUMN searchable SET NOT NULL;

-- The title-sized lines alone (weight A): hybrid search draws part of its bounded OCR candidate pool
-- from here, so a common word still brings the photos where it is the headline. A stored column rather
-- than an expression index: the planner has column statistics for it and estimates matches well.
ALTER TABLE immich_aio.asset_ocr_document
  ADD COLUMN IF NOT EXISTS title tsvector GENERATED ALWAYS AS (ts_filter(document, '{a}')) STORED;
CREATE INDEX IF NOT EXISTS asset_ocr_document_title_gin ON immich_aio.asset_ocr_document USING gin (title);

-- The asset's OCR run (asset_job_status."ocrAt") the document was last brought up to: copied by the
-- job-status trigger below when the patched server records a run, so a run recorded by any other writer
-- (a stock Immich) shows as a difference, found by reconcile_begin without comparing clocks.
ALTER TABLE immich_aio.asset_ocr_document ADD COLUMN IF NOT EXISTS "ocrAt" timestamptz;
DO $ocr_at$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM immich_aio.meta WHERE key = 'ocr_at_filled') THEN
    -- documents kept by an earlier version were current: take their asset's last run as theirs
    UPDATE immich_aio.asset_ocr_document d SET "ocrAt" = j."ocrAt"
      FROM asset_job_status j WHERE j."assetId" = d."assetId";
    INSERT INTO immich_aio.meta VALUES ('ocr_at_filled', clock_timestamp()::text);
  END IF;
END
$ocr_at$;

CREATE OR REPLACE AGGREGATE immich_aio.tsvector_agg(tsvector) (
  SFUNC = tsvector_concat,
  STYPE = tsvector,
  INITCOND = ''
);

-- Line prominence from box height relative to the tallest box of the same asset: title-sized lines
-- get weight A, body text C or D.
CREATE OR REPLACE FUNCTION immich_aio.box_weight(height double precision, tallest double precision) RETURNS "char"
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE
    WHEN tallest IS NULL OR tallest <= 0 OR height >= 0.75 * tallest THEN 'A'
    WHEN height >= 0.5 * tallest THEN 'B'
    WHEN height >= 0.3 * tallest THEN 'C'
    ELSE 'D'
  END;

-- Rebuild the documents of the given assets from their visible OCR boxes, in reading order (top to
-- bottom, left to right); assets left without visible boxes lose their document. Returns rows written.
CREATE OR REPLACE FUNCTION immich_aio.refresh_documents(asset_ids uuid[]) RETURNS integer
  LANGUAGE plpgsql VOLATILE
  -- The planner cannot see how few ids the array holds and estimates the whole table; JIT compilation
  -- at that estimated cost took 60 ms to 1 s, for a statement that runs in about a millisecond.
  SET jit = off
AS $refresh$
DECLARE
  written integer;
  use_segmenter boolean := immich_aio.segmenter() = 'zhparser';
BEGIN
  DELETE FROM immich_aio.asset_ocr_document d
  WHERE d."assetId" = ANY (asset_ids)
    AND NOT EXISTS (SELECT 1 FROM asset_ocr o WHERE o."assetId" = d."assetId" AND o."isVisible");

  -- One set-based statement (the tokenizer is inlined and planned once for all boxes): each box's
  -- token positions are shifted past the previous boxes' and carry the box's weight, the same result
  -- as concatenating immich_aio.ocr_document(text, weight) box by box.
  INSERT INTO immich_aio.asset_ocr_document AS d
    ("assetId", document, "boxCount", "updatedAt", "ownerId", searchable, "ocrAt")
  SELECT grams."assetId", grams.document || coalesce(zh.document, ''::tsvector), grams.box_count, clock_timestamp(),
         -- scalar lookups by primary key: as a join, the planner (which cannot see how few ids the array
         -- holds) hashed the whole asset table for every rebuild
         (SELECT a."ownerId" FROM asset a WHERE a.id = grams."assetId"),
         (SELECT immich_aio.searchable(a.visibility::text, a."deletedAt") FROM asset a WHERE a.id = grams."assetId"),
         (SELECT j."ocrAt" FROM asset_job_status j WHERE j."assetId" = grams."assetId")
  FROM (
  SELECT shifted."assetId",
         coalesce(string_agg(immich_aio.quote_lexeme(shifted.token) || ':'
                             || least(shifted.pos + shifted."offset", 16383) || shifted.weight::text, ' '), '')::tsvector
           AS document,
         max(shifted.box_count) AS box_count
  FROM (
    SELECT t."assetId", t.token, t.pos, t.weight, t.box_count,
           coalesce(sum(t.box_width) FILTER (WHERE t.first_of_box)
                      OVER (PARTITION BY t."assetId" ORDER BY t.box_number
                            RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS "offset"
    FROM (
      SELECT b."assetId", b.box_number, b.box_count, tok.token, tok.pos,
             immich_aio.box_weight(b.height, b.tallest) AS weight,
             max(tok.pos) OVER (PARTITION BY b."assetId", b.box_number) AS box_width,
             row_number() OVER (PARTITION BY b."assetId", b.box_number ORDER BY tok.pos, tok.token) = 1 AS first_of_box
      FROM (
        SELECT o."assetId", o.text,
               (abs(o.y4 - o.y1) + abs(o.y3 - o.y2)) / 2.0 AS height,
               max((abs(o.y4 - o.y1) + abs(o.y3 - o.y2)) / 2.0) OVER (PARTITION BY o."assetId") AS tallest,
               row_number() OVER (PARTITION BY o."assetId" ORDER BY least(o.y1, o.y2), least(o.x1, o.x4), o.id)
                 AS box_number,
               count(*) OVER (PARTITION BY o."assetId") AS box_count
        FROM asset_ocr o
        WHERE o."assetId" = ANY (asset_ids) AND o."isVisible"
      ) AS b
      LEFT JOIN LATERAL immich_aio.tokens(b.text) AS tok ON true
    ) AS t
  ) AS shifted
  GROUP BY shifted."assetId"
  ) AS grams
  LEFT JOIN LATERAL (
    SELECT immich_aio.tsvector_agg(immich_aio.segmenter_document(o.text)) AS document
    FROM asset_ocr o
    WHERE use_segmenter AND o."assetId" = grams."assetId" AND o."isVisible"
  ) AS zh ON true
  ON CONFLICT ("assetId") DO UPDATE
    SET document = excluded.document, "boxCount" = excluded."boxCount", "updatedAt" = excluded."updatedAt",
        "ownerId" = excluded."ownerId", searchable = excluded.searchable, "ocrAt" = excluded."ocrAt";
  GET DIAGNOSTICS written = ROW_COUNT;
  RETURN written;
END
$refresh$;

-- Statement-level triggers with transition tables: Immich replaces an asset's boxes with one statement
-- (delete + insert), so each affected asset is rebuilt once per statement, not once per box.
CREATE OR REPLACE FUNCTION immich_aio.on_asset_ocr_insert() RETURNS trigger
  LANGUAGE plpgsql
AS $trg$
BEGIN
  PERFORM immich_aio.refresh_documents(ARRAY(SELECT DISTINCT "assetId" FROM immich_aio_new_rows));
  RETURN NULL;
END
$trg$;

CREATE OR REPLACE FUNCTION immich_aio.on_asset_ocr_update() RETURNS trigger
  LANGUAGE plpgsql
AS $trg$
BEGIN
  PERFORM immich_aio.refresh_documents(ARRAY(
    SELECT "assetId" FROM immich_aio_new_rows UNION SELECT "assetId" FROM immich_aio_old_rows));
  RETURN NULL;
END
$trg$;

CREATE OR REPLACE FUNCTION immich_aio.on_asset_ocr_delete() RETURNS trigger
  LANGUAGE plpgsql
AS $trg$
BEGIN
  PERFORM immich_aio.refresh_documents(ARRAY(SELECT DISTINCT "assetId" FROM immich_aio_old_rows));
  RETURN NULL;
END
$trg$;

CREATE OR REPLACE FUNCTION immich_aio.on_asset_ocr_truncate() RETURNS trigger
  LANGUAGE plpgsql
AS $trg$
BEGIN
  DELETE FROM immich_aio.asset_ocr_document;
  RETURN NULL;
END
$trg$;

-- Keep the copied owner and searchability current when Immich trashes, restores, archives, locks, hides
-- or transfers an asset. The columns are compared inside the function, not in the trigger's column list
-- or WHEN clause: those would make the trigger depend on the columns and block an upstream migration
-- that alters them.
CREATE OR REPLACE FUNCTION immich_aio.on_asset_visibility_change() RETURNS trigger
  LANGUAGE plpgsql
AS $trg$
BEGIN
  IF OLD."ownerId" IS DISTINCT FROM NEW."ownerId" OR OLD.visibility IS DISTINCT FROM NEW.visibility
     OR (OLD."deletedAt" IS NULL) <> (NEW."deletedAt" IS NULL) THEN
    UPDATE immich_aio.asset_ocr_document
      SET "ownerId" = NEW."ownerId", searchable = immich_aio.searchable(NEW.visibility::text, NEW."deletedAt")
      WHERE "assetId" = NEW.id;
  END IF;
  RETURN NULL;
END
$trg$;

-- Follow the asset's OCR runs (see the "ocrAt" column): Immich records a run after writing its boxes.
CREATE OR REPLACE FUNCTION immich_aio.on_asset_job_status_change() RETURNS trigger
  LANGUAGE plpgsql
AS $trg$
BEGIN
  IF TG_OP = 'INSERT' OR OLD."ocrAt" IS DISTINCT FROM NEW."ocrAt" THEN
    UPDATE immich_aio.asset_ocr_document SET "ocrAt" = NEW."ocrAt"
      WHERE "assetId" = NEW."assetId" AND "ocrAt" IS DISTINCT FROM NEW."ocrAt";
  END IF;
  RETURN NULL;
END
$trg$;

-- The triggers, created for the sync mode: in 'patched-server' mode each has a WHEN clause on the
-- connection's application_name (a setting read, no table, no column), so for any other connection the
-- statement or row goes on as if the trigger did not exist.
DO $triggers$
DECLARE
  gate text := CASE WHEN (SELECT value FROM immich_aio.meta WHERE key = 'sync_mode') = 'patched-server'
                    THEN format(' WHEN (current_setting(%L) = %L)', 'application_name',
                                immich_aio.server_application_name())
                    ELSE '' END;
BEGIN
  EXECUTE 'CREATE OR REPLACE TRIGGER immich_aio_ocr_insert AFTER INSERT ON asset_ocr'
    ' REFERENCING NEW TABLE AS immich_aio_new_rows FOR EACH STATEMENT' || gate
    || ' EXECUTE FUNCTION immich_aio.on_asset_ocr_insert()';
  EXECUTE 'CREATE OR REPLACE TRIGGER immich_aio_ocr_update AFTER UPDATE ON asset_ocr'
    ' REFERENCING OLD TABLE AS immich_aio_old_rows NEW TABLE AS immich_aio_new_rows FOR EACH STATEMENT' || gate
    || ' EXECUTE FUNCTION immich_aio.on_asset_ocr_update()';
  EXECUTE 'CREATE OR REPLACE TRIGGER immich_aio_ocr_delete AFTER DELETE ON asset_ocr'
    ' REFERENCING OLD TABLE AS immich_aio_old_rows FOR EACH STATEMENT' || gate
    || ' EXECUTE FUNCTION immich_aio.on_asset_ocr_delete()';
  EXECUTE 'CREATE OR REPLACE TRIGGER immich_aio_ocr_truncate AFTER TRUNCATE ON asset_ocr FOR EACH STATEMENT' || gate
    || ' EXECUTE FUNCTION immich_aio.on_asset_ocr_truncate()';
  EXECUTE 'CREATE OR REPLACE TRIGGER immich_aio_asset_visibility AFTER UPDATE ON asset FOR EACH ROW' || gate
    || ' EXECUTE FUNCTION immich_aio.on_asset_visibility_change()';
  EXECUTE 'CREATE OR REPLACE TRIGGER immich_aio_asset_job_status AFTER INSERT OR UPDATE ON asset_job_status'
    ' FOR EACH ROW' || gate || ' EXECUTE FUNCTION immich_aio.on_asset_job_status_change()';
END
$triggers$;

-- Resumable batched backfill: documents for the next 'batch_size' assets (by id) after 'after_id'.
-- Returns the last asset id handled (NULL when done), the assets handled and the rows written.
CREATE OR REPLACE FUNCTION immich_aio.backfill_batch(after_id uuid, batch_size integer DEFAULT 1000,
                                                     OUT last_id uuid, OUT assets integer, OUT written integer)
  LANGUAGE plpgsql VOLATILE
AS $backfill$
DECLARE
  ids uuid[];
BEGIN
  SELECT array_agg(a ORDER BY a) INTO ids FROM (
    -- a plain range condition, so the scan walks Immich's index on asset_ocr("assetId")
    SELECT DISTINCT o."assetId" AS a FROM asset_ocr o
    WHERE o."assetId" > coalesce(after_id, '00000000-0000-0000-0000-000000000000'::uuid)
    ORDER BY 1 LIMIT batch_size
  ) AS next_ids;
  IF ids IS NULL THEN
    last_id := NULL;
    assets := 0;
    written := 0;
    RETURN;
  END IF;
  written := immich_aio.refresh_documents(ids);
  assets := array_length(ids, 1);
  last_id := ids[array_length(ids, 1)];
  INSERT INTO immich_aio.meta VALUES ('backfill_cursor', last_id::text)
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
END
$backfill$;

-- Bring the documents up to date with what any writer did while the triggers did not run for it (a stock
-- Immich opened on this database in 'patched-server' mode). reconcile_begin() queues the assets to
-- rebuild: documents whose asset lost all its visible boxes or was deleted, assets whose visible boxes
-- differ in number from their document, and documents older than their asset's last OCR run.
-- reconcile_step() rebuilds a batch of the queue per call (one short transaction
-- each, resumable) and, once the queue is empty, re-copies owner and searchability that no longer match.
CREATE TABLE IF NOT EXISTS immich_aio.reconcile_queue ("assetId" uuid PRIMARY KEY);

CREATE OR REPLACE FUNCTION immich_aio.reconcile_begin() RETURNS bigint
  LANGUAGE plpgsql VOLATILE
  SET jit = off
AS $reconcile_begin$
BEGIN
  INSERT INTO immich_aio.reconcile_queue ("assetId")
    SELECT coalesce(boxes."assetId", d."assetId")
    FROM (SELECT o."assetId", count(*) AS n FROM asset_ocr o WHERE o."isVisible" GROUP BY o."assetId") AS boxes
    FULL JOIN immich_aio.asset_ocr_document d ON d."assetId" = boxes."assetId"
    WHERE boxes."assetId" IS NULL OR d."assetId" IS NULL OR d."boxCount" <> boxes.n
    UNION
    SELECT j."assetId" FROM asset_job_status j
    JOIN immich_aio.asset_ocr_document d ON d."assetId" = j."assetId"
    WHERE j."ocrAt" IS DISTINCT FROM d."ocrAt"
    ON CONFLICT DO NOTHING;
  RETURN (SELECT count(*) FROM immich_aio.reconcile_queue);
END
$reconcile_begin$;

CREATE OR REPLACE FUNCTION immich_aio.reconcile_step(batch_size integer DEFAULT 1000,
                                                     OUT rebuilt integer, OUT recopied integer, OUT remaining bigint)
  LANGUAGE plpgsql VOLATILE
  SET jit = off
AS $reconcile_step$
DECLARE
  batch uuid[];
BEGIN
  WITH taken AS (
    DELETE FROM immich_aio.reconcile_queue q
    WHERE q."assetId" IN (SELECT "assetId" FROM immich_aio.reconcile_queue ORDER BY 1 LIMIT greatest(batch_size, 1))
    RETURNING q."assetId"
  )
  SELECT array_agg("assetId") INTO batch FROM taken;
  rebuilt := CASE WHEN batch IS NULL THEN 0 ELSE immich_aio.refresh_documents(batch) END;
  remaining := (SELECT count(*) FROM immich_aio.reconcile_queue);
  recopied := 0;
  IF remaining = 0 THEN
    UPDATE immich_aio.asset_ocr_document d
      SET "ownerId" = a."ownerId", searchable = immich_aio.searchable(a.visibility::text, a."deletedAt")
      FROM asset a
      WHERE a.id = d."assetId"
        AND (d."ownerId" <> a."ownerId" OR d.searchable <> immich_aio.searchable(a.visibility::text, a."deletedAt"));
    GET DIAGNOSTICS recopied = ROW_COUNT;
    INSERT INTO immich_aio.meta VALUES ('reconciled_at', clock_timestamp()::text)
      ON CONFLICT (key) DO UPDATE SET value = excluded.value;
  END IF;
END
$reconcile_step$;

-- Initial backfill in one statement, once, unless the session asked to skip it.
DO $initial_backfill$
BEGIN
  IF coalesce(current_setting('immich_aio.skip_backfill', true), '') <> 'on'
     AND NOT EXISTS (SELECT 1 FROM immich_aio.meta WHERE key = 'backfilled') THEN
    PERFORM immich_aio.refresh_documents(ARRAY(SELECT DISTINCT "assetId" FROM asset_ocr));
    INSERT INTO immich_aio.meta VALUES ('backfilled', clock_timestamp()::text)
      ON CONFLICT (key) DO NOTHING;
  END IF;
END
$initial_backfill$;

-- ---------------------------------------------------------------------------------------------------
-- Standalone searches (used by the CLI and benchmarks; Immich's own query builder uses the pieces above)
-- ---------------------------------------------------------------------------------------------------

-- Ranked OCR-only search, best first, ties broken by asset id.
CREATE OR REPLACE FUNCTION immich_aio.search_ocr(
  query_text text, user_ids uuid[], result_limit integer DEFAULT 100, result_offset integer DEFAULT 0
) RETURNS TABLE ("assetId" uuid, score real)
  LANGUAGE plpgsql STABLE
  SET plan_cache_mode = force_custom_plan
  -- starting parallel workers or JIT-compiling costs more than these index-driven queries take
  SET max_parallel_workers_per_gather = 0
  SET jit = off
AS $search_ocr$
DECLARE
  query tsquery := immich_aio.ocr_query(query_text);
BEGIN
  IF numnode(query) = 0 THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT d."assetId", immich_aio.ocr_rank(d.document, query) AS rank_score
    FROM immich_aio.asset_ocr_document d
    WHERE d.document @@ query AND d."ownerId" = ANY (user_ids) AND d.searchable
    ORDER BY rank_score DESC, d."assetId"
    LIMIT greatest(result_limit, 0) OFFSET greatest(result_offset, 0);
END
$search_ocr$;

-- Hybrid search: the 'depth' nearest CLIP embeddings (vector index) and the 'depth' best OCR matches
-- (GIN index), both restricted to searchable assets, fused by immich_aio.hybrid_score. 'depth' is
-- max(candidates, offset + limit), independent of the page for all pages within 'candidates', so
-- pagination is stable; ties are broken by asset id.
CREATE OR REPLACE FUNCTION immich_aio.search_hybrid(
  query_text text, query_embedding vector, user_ids uuid[],
  result_limit integer DEFAULT 100, result_offset integer DEFAULT 0,
  mode text DEFAULT 'rrf', k integer DEFAULT 60,
  clip_weight double precision DEFAULT 1.0, ocr_weight double precision DEFAULT 1.0,
  candidates integer DEFAULT 200
) RETURNS TABLE ("assetId" uuid, score double precision, "clipRank" bigint, "ocrRank" bigint,
                 "clipDistance" double precision, "ocrScore" real)
  LANGUAGE plpgsql VOLATILE
  -- plan with the actual query, embedding and depth each time: a generic plan cannot see the LIMIT and
  -- may sort the whole table instead of walking the vector index
  SET plan_cache_mode = force_custom_plan
  -- starting parallel workers or JIT-compiling costs more than these index-driven queries take
  SET max_parallel_workers_per_gather = 0
  SET jit = off
AS $search_hybrid$
DECLARE
  query tsquery := immich_aio.ocr_query(query_text);
  depth integer := greatest(candidates, greatest(result_offset, 0) + greatest(result_limit, 0), 1);
  -- OCR documents ranked per search, at most; see the ocr CTE
  pool integer := 2 * depth;
BEGIN
  IF mode IS NULL OR mode NOT IN ('rrf', 'weighted') THEN
    RAISE EXCEPTION 'immich_aio: mode must be rrf or weighted, not %', coalesce(mode, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- Let a filtered HNSW scan continue until 'depth' visible rows are found (pgvector >= 0.8); older
  -- pgvector has no such setting and falls back to ef_search alone.
  -- ef_search above depth: a scan whose candidate list is exactly 'depth' long would trigger an extra
  -- iterative pass to fill the last visible rows (measured: twice the time).
  PERFORM set_config('hnsw.ef_search', least(greatest(depth + depth / 2, 40), 1000)::text, true);
  BEGIN
    PERFORM set_config('hnsw.iterative_scan', 'relaxed_order', true);
  EXCEPTION WHEN OTHERS THEN
    NULL;
  END;
  RETURN QUERY
    WITH clip AS MATERIALIZED (
      SELECT s."assetId" AS id, s.embedding <=> query_embedding AS distance
      FROM smart_search s
      JOIN asset a ON a.id = s."assetId"
      WHERE a."ownerId" = ANY (user_ids) AND a."deletedAt" IS NULL
        AND a.visibility::text NOT IN ('locked', 'hidden')
      ORDER BY s.embedding <=> query_embedding
      LIMIT depth
    ), clip_ranked AS (
      SELECT c.id, c.distance, row_number() OVER (ORDER BY c.distance, c.id) AS rank FROM clip c
    ), ocr AS MATERIALIZED (
      -- Bounded work for common words: rank at most 'pool' searchable documents whose title-sized lines
      -- match plus at most 'pool' matching anywhere, instead of every match (a word on two thirds of
      -- all photos would otherwise rank hundreds of thousands of documents). Below 'pool' matches this
      -- is the exact ranking; above, the title matches still come first.
      SELECT m.id, max(m.ocr_score) AS ocr_score
      FROM (
        (SELECT d."assetId" AS id, immich_aio.ocr_rank(d.document, query) AS ocr_score
         FROM immich_aio.asset_ocr_document d
         WHERE numnode(query) > 0 AND d.title @@ query
           AND d."ownerId" = ANY (user_ids) AND d.searchable
         LIMIT pool)
        UNION ALL
        (SELECT d."assetId", immich_aio.ocr_rank(d.document, query)
         FROM immich_aio.asset_ocr_document d
         WHERE numnode(query) > 0 AND d.document @@ query
           AND d."ownerId" = ANY (user_ids) AND d.searchable
         LIMIT pool)
      ) AS m
      GROUP BY m.id
      ORDER BY ocr_score DESC, m.id
      LIMIT depth
    ), ocr_ranked AS (
      SELECT o.id, o.ocr_score, row_number() OVER (ORDER BY o.ocr_score DESC, o.id) AS rank FROM ocr o
    ), fused AS (
      SELECT coalesce(c.id, o.id) AS id, c.rank AS clip_rank, o.rank AS ocr_rank,
             -- weighted mode needs the real distance of OCR-only candidates too; rrf does not
             coalesce(c.distance, CASE WHEN mode = 'weighted' THEN
                        (SELECT s.embedding <=> query_embedding FROM smart_search s WHERE s."assetId" = o.id)
                      END) AS distance,
             o.ocr_score
      FROM clip_ranked c
      FULL JOIN ocr_ranked o ON o.id = c.id
    )
    SELECT f.id,
           immich_aio.hybrid_score(f.clip_rank, f.ocr_rank, f.distance, f.ocr_score, mode, k,
                                   clip_weight, ocr_weight) AS fused_score,
           f.clip_rank, f.ocr_rank, f.distance, f.ocr_score
    FROM fused f
    ORDER BY fused_score DESC, f.id
    LIMIT greatest(result_limit, 0) OFFSET greatest(result_offset, 0);
END
$search_hybrid$;
