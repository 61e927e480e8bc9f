"""The slice of Immich v3.1's database schema that db_extension reads, for tests and benchmarks.

Written from the column lists of Immich's table definitions (names and types only); a real Immich
database has many more columns, indexes and triggers that the SQL here does not touch.
"""

from __future__ import annotations

from typing import Any

IMMICH_V3_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

DO $$ BEGIN
  CREATE TYPE asset_visibility_enum AS ENUM ('archive', 'timeline', 'hidden', 'locked');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE OR REPLACE FUNCTION f_unaccent(text) RETURNS text
  LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
  RETURN unaccent('unaccent', $1);

CREATE TABLE IF NOT EXISTS "user" (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email varchar NOT NULL UNIQUE,
  name varchar NOT NULL DEFAULT '',
  "deletedAt" timestamptz
);

CREATE TABLE IF NOT EXISTS partner (
  "sharedById" uuid NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
  "sharedWithId" uuid NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
  "inTimeline" boolean NOT NULL DEFAULT false,
  PRIMARY KEY ("sharedById", "sharedWithId")
);

CREATE TABLE IF NOT EXISTS asset (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  "ownerId" uuid NOT NULL REFERENCES "user"(id) ON DELETE CASCADE,
  "originalFileName" varchar NOT NULL DEFAULT 'IMG.jpg',
  "fileCreatedAt" timestamptz NOT NULL DEFAULT now(),
  "localDateTime" timestamptz NOT NULL DEFAULT now(),
  "createdAt" timestamptz NOT NULL DEFAULT now(),
  "updatedAt" timestamptz NOT NULL DEFAULT now(),
  "deletedAt" timestamptz,
  "isFavorite" boolean NOT NULL DEFAULT false,
  "stackId" uuid,
  visibility asset_visibility_enum NOT NULL DEFAULT 'timeline'
);
CREATE INDEX IF NOT EXISTS asset_owner_idx ON asset ("ownerId");

CREATE TABLE IF NOT EXISTS smart_search (
  "assetId" uuid PRIMARY KEY REFERENCES asset(id) ON DELETE CASCADE,
  embedding vector(512) NOT NULL
);
ALTER TABLE smart_search ALTER COLUMN embedding SET STORAGE EXTERNAL;

CREATE TABLE IF NOT EXISTS asset_ocr (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  "assetId" uuid NOT NULL REFERENCES asset(id) ON DELETE CASCADE ON UPDATE CASCADE,
  x1 real NOT NULL, y1 real NOT NULL, x2 real NOT NULL, y2 real NOT NULL,
  x3 real NOT NULL, y3 real NOT NULL, x4 real NOT NULL, y4 real NOT NULL,
  "boxScore" real NOT NULL,
  "textScore" real NOT NULL,
  text text NOT NULL,
  "isVisible" boolean NOT NULL DEFAULT true
);
CREATE INDEX IF NOT EXISTS asset_ocr_asset_idx ON asset_ocr ("assetId");

CREATE TABLE IF NOT EXISTS asset_job_status (
  "assetId" uuid PRIMARY KEY REFERENCES asset(id) ON DELETE CASCADE ON UPDATE CASCADE,
  "ocrAt" timestamptz
);

CREATE TABLE IF NOT EXISTS kysely_migrations (
  name varchar(255) PRIMARY KEY,
  timestamp varchar(255) NOT NULL
);

CREATE TABLE IF NOT EXISTS ocr_search (
  "assetId" uuid PRIMARY KEY REFERENCES asset(id) ON DELETE CASCADE ON UPDATE CASCADE,
  text text NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_ocr_search_text ON ocr_search USING gin (f_unaccent(text) gin_trgm_ops);

-- what the gateway's filters read (asset type and flags, EXIF, albums)
ALTER TABLE asset ADD COLUMN IF NOT EXISTS type varchar NOT NULL DEFAULT 'IMAGE';
ALTER TABLE asset ADD COLUMN IF NOT EXISTS "isOffline" boolean NOT NULL DEFAULT false;
ALTER TABLE asset ADD COLUMN IF NOT EXISTS "libraryId" uuid;
CREATE TABLE IF NOT EXISTS asset_exif (
  "assetId" uuid PRIMARY KEY REFERENCES asset(id) ON DELETE CASCADE,
  city varchar, state varchar, country varchar, make varchar, model varchar, "lensModel" varchar,
  rating integer, "fileSizeInByte" bigint
);
CREATE TABLE IF NOT EXISTS album (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  "ownerId" uuid NOT NULL REFERENCES "user"(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS album_asset (
  "albumId" uuid NOT NULL REFERENCES album(id) ON DELETE CASCADE,
  "assetId" uuid NOT NULL REFERENCES asset(id) ON DELETE CASCADE,
  PRIMARY KEY ("albumId", "assetId")
);
"""

CLIP_INDEX = (
    "CREATE INDEX IF NOT EXISTS clip_index ON smart_search "
    "USING hnsw (embedding vector_cosine_ops) WITH (ef_construction = 300, m = 16)"
)


def create_immich_schema(conn: Any, *, with_clip_index: bool = True) -> None:
    """Create the Immich tables db_extension uses (idempotent) on a psycopg connection."""
    with conn.cursor() as cur:
        cur.execute(IMMICH_V3_SCHEMA)
        if with_clip_index:
            cur.execute(CLIP_INDEX)
    conn.commit()


def tokenize_like_immich(text: str) -> list[str]:
    """Upstream Immich v3.1's OCR search tokenization (CJK runs become bigrams), for comparisons."""
    tokens: list[str] = []
    i = 0
    while i < len(text):
        if ord(text[i]) <= 32:
            i += 1
            continue
        start = i
        if _is_cjk(text[i]):
            while i < len(text) and _is_cjk(text[i]):
                i += 1
            run = text[start:i]
            tokens.extend([run] if len(run) == 1 else [run[k : k + 2] for k in range(len(run) - 1)])
        else:
            while i < len(text) and ord(text[i]) > 32 and not _is_cjk(text[i]):
                i += 1
            tokens.append(text[start:i])
    return tokens


def _is_cjk(char: str) -> bool:
    # The same code-point ranges as upstream's isCJK (UTF-16 code units there; BMP only).
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF
        or 0x3040 <= code <= 0x309F
        or 0x30A0 <= code <= 0x30FF
        or 0x3400 <= code <= 0x4DBF
    )
