-- PostgreSQL load of `prices` into "prices": one transaction

-- 1. the ledger decision, per file

SELECT "load_id" FROM glueless_loads WHERE "object_url" = $1 AND "object_version" = $2;

SELECT "fingerprint", "load_id" FROM glueless_loads WHERE "object_url" = $1
  ORDER BY "loaded_at" DESC, "seq" DESC LIMIT 1;

-- 2. a fresh staging table, filled by the adapter

DROP TABLE IF EXISTS pg_temp."glueless_staging";
CREATE TEMP TABLE "glueless_staging" (c0 text, c1 numeric(12, 2), c2 numeric(20, 4), "glueless_file" integer NOT NULL, "glueless_row" bigint NOT NULL) ON COMMIT DROP;

COPY pg_temp."glueless_staging" FROM STDIN (FORMAT binary);

-- 3. staged rows not newer than the fact row with their key

DELETE FROM pg_temp."glueless_staging" WHERE "glueless_row" IN (
  SELECT s."glueless_row" FROM pg_temp."glueless_staging" AS s
  JOIN "prices" AS f ON f."sku" = s.c0
  WHERE s.c2 IS NULL OR (f."revision" IS NOT NULL AND s.c2 <= f."revision"));

-- 4. one row per key: the highest version, then the later file, then the later row

DELETE FROM pg_temp."glueless_staging" WHERE "glueless_row" IN (
  SELECT "glueless_row" FROM (
    SELECT "glueless_row", ROW_NUMBER() OVER (PARTITION BY c0 ORDER BY c2 DESC NULLS LAST, "glueless_file" DESC, "glueless_row" DESC) AS "glueless_rank"
    FROM pg_temp."glueless_staging") AS d
  WHERE d."glueless_rank" > 1);

-- 5. the upsert on the key

MERGE INTO "prices"
  USING pg_temp."glueless_staging" AS s
  ON "prices"."sku" = s.c0
  WHEN MATCHED THEN UPDATE SET "price" = s.c1, "revision" = s.c2
  WHEN NOT MATCHED THEN INSERT ("sku", "price", "revision") VALUES (s.c0, s.c1, s.c2);

-- 6. one ledger row per loaded file

INSERT INTO glueless_loads ("object_url", "object_version", "fingerprint", "load_id", "dataset", "table_name", "rows_loaded", "loaded_at")
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- 2-5 straight into the table, when it is empty or the last tries were not refused (a key it
-- has, a key twice, or anything else it refuses, rolls back to the savepoint and the load
-- takes steps 2-5)

SELECT 1 FROM "prices" LIMIT 1;

SAVEPOINT glueless_direct;

COPY "prices" ("sku", "price", "revision") FROM STDIN (FORMAT binary);

RELEASE SAVEPOINT glueless_direct;
