-- PostgreSQL load of `shipments` into "logistics"."Shipment Lines ""EU""": one transaction

-- 1. the ledger decision, per file

SELECT "load_id" FROM glueless_loads WHERE "object_url" = $1 AND "object_version" = $2;

SELECT "fingerprint", "load_id" FROM glueless_loads WHERE "object_url" = $1
  ORDER BY "loaded_at" DESC, "seq" DESC LIMIT 1;

-- 2. a fresh staging table, filled by the adapter

DROP TABLE IF EXISTS pg_temp."glueless_staging";
CREATE TEMP TABLE "glueless_staging" (c0 text, c1 integer, c2 double precision, c3 numeric(20, 2), c4 boolean, c5 date, c6 time, c7 timestamptz, c8 bigint, "glueless_file" integer NOT NULL, "glueless_row" bigint NOT NULL) ON COMMIT DROP;

COPY pg_temp."glueless_staging" FROM STDIN (FORMAT binary);

-- 3. staged rows not newer than the fact row with their key

DELETE FROM pg_temp."glueless_staging" WHERE "glueless_row" IN (
  SELECT s."glueless_row" FROM pg_temp."glueless_staging" AS s
  JOIN "logistics"."Shipment Lines ""EU""" AS f ON f."shipment" = s.c0 AND f."line" = s.c1
  WHERE s.c7 IS NULL OR (f."updated" IS NOT NULL AND s.c7 <= f."updated"));

-- 4. one row per key: the highest version, then the later file, then the later row

DELETE FROM pg_temp."glueless_staging" WHERE "glueless_row" IN (
  SELECT "glueless_row" FROM (
    SELECT "glueless_row", ROW_NUMBER() OVER (PARTITION BY c0, c1 ORDER BY c7 DESC NULLS LAST, "glueless_file" DESC, "glueless_row" DESC) AS "glueless_rank"
    FROM pg_temp."glueless_staging") AS d
  WHERE d."glueless_rank" > 1);

-- 5. the upsert on the key

MERGE INTO "logistics"."Shipment Lines ""EU"""
  USING pg_temp."glueless_staging" AS s
  ON "logistics"."Shipment Lines ""EU"""."shipment" = s.c0 AND "logistics"."Shipment Lines ""EU"""."line" = s.c1
  WHEN MATCHED THEN UPDATE SET "weight kg" = s.c2, "unit ""price"" (EUR)" = s.c3, "fragile" = s.c4, "day" = s.c5, "at" = s.c6, "updated" = s.c7, "count" = s.c8
  WHEN NOT MATCHED THEN INSERT ("shipment", "line", "weight kg", "unit ""price"" (EUR)", "fragile", "day", "at", "updated", "count") VALUES (s.c0, s.c1, s.c2, s.c3, s.c4, s.c5, s.c6, s.c7, s.c8);

-- 6. one ledger row per loaded file

INSERT INTO glueless_loads ("object_url", "object_version", "fingerprint", "load_id", "dataset", "table_name", "rows_loaded", "loaded_at")
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- 2-5 straight into the table, when it is empty or the last tries were not refused (a key it
-- has, a key twice, or anything else it refuses, rolls back to the savepoint and the load
-- takes steps 2-5)

SELECT 1 FROM "logistics"."Shipment Lines ""EU""" LIMIT 1;

SAVEPOINT glueless_direct;

COPY "logistics"."Shipment Lines ""EU""" ("shipment", "line", "weight kg", "unit ""price"" (EUR)", "fragile", "day", "at", "updated", "count") FROM STDIN (FORMAT binary);

RELEASE SAVEPOINT glueless_direct;
