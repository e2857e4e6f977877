-- PostgreSQL load of `orders` into "fact_orders": one transaction

-- 1. the ledger decision, per file

SELECT "load_id" FROM glueless_loads WHERE "object_url" = $1 AND "object_version" = $2;

SELECT "fingerprint", "load_id" FROM glueless_loads WHERE "object_url" = $1
  ORDER BY "loaded_at" DESC, "seq" DESC LIMIT 1;

-- 2. a fresh staging table, filled by the adapter

DROP TABLE IF EXISTS pg_temp."glueless_staging";
CREATE TEMP TABLE "glueless_staging" (c0 bigint, c1 timestamptz, c2 bigint, c3 text, c4 bigint, c5 numeric(12, 2), c6 text, c7 text, c8 text, c9 text, "glueless_file" integer NOT NULL, "glueless_row" bigint NOT NULL) ON COMMIT DROP;

COPY pg_temp."glueless_staging" FROM STDIN (FORMAT binary);

-- 3. staged rows not newer than the fact row with their key

DELETE FROM pg_temp."glueless_staging" WHERE "glueless_row" IN (
  SELECT s."glueless_row" FROM pg_temp."glueless_staging" AS s
  JOIN "fact_orders" AS f ON f."order_id" = s.c0
  WHERE s.c1 IS NULL OR (f."order_ts" IS NOT NULL AND s.c1 <= f."order_ts"));

-- 4. one row per key: the highest version, then the later file, then the later row

DELETE FROM pg_temp."glueless_staging" WHERE "glueless_row" IN (
  SELECT "glueless_row" FROM (
    SELECT "glueless_row", ROW_NUMBER() OVER (PARTITION BY c0 ORDER BY c1 DESC NULLS LAST, "glueless_file" DESC, "glueless_row" DESC) AS "glueless_rank"
    FROM pg_temp."glueless_staging") AS d
  WHERE d."glueless_rank" > 1);

-- 5. the upsert on the key

MERGE INTO "fact_orders"
  USING pg_temp."glueless_staging" AS s
  ON "fact_orders"."order_id" = s.c0
  WHEN MATCHED THEN UPDATE SET "order_ts" = s.c1, "customer_id" = s.c2, "sku" = s.c3, "quantity" = s.c4, "unit_price" = s.c5, "currency" = s.c6, "country" = s.c7, "status" = s.c8, "note" = s.c9
  WHEN NOT MATCHED THEN INSERT ("order_id", "order_ts", "customer_id", "sku", "quantity", "unit_price", "currency", "country", "status", "note") VALUES (s.c0, s.c1, s.c2, s.c3, s.c4, s.c5, s.c6, s.c7, s.c8, s.c9);

-- 6. one ledger row per loaded file

INSERT INTO glueless_loads ("object_url", "object_version", "fingerprint", "load_id", "dataset", "table_name", "rows_loaded", "loaded_at")
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- 2-5 straight into the table, when it is empty or the last tries were not refused (a key it
-- has, a key twice, or anything else it refuses, rolls back to the savepoint and the load
-- takes steps 2-5)

SELECT 1 FROM "fact_orders" LIMIT 1;

SAVEPOINT glueless_direct;

COPY "fact_orders" ("order_id", "order_ts", "customer_id", "sku", "quantity", "unit_price", "currency", "country", "status", "note") FROM STDIN (FORMAT binary);

RELEASE SAVEPOINT glueless_direct;
