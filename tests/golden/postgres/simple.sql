-- PostgreSQL load of `orders` into "fact_orders": one transaction

-- 1. the ledger decision, per file

SELECT "load_id" FROM glueless_loads WHERE "object_url" = $1 AND "object_version" = $2;

SELECT "fingerprint", "load_id" FROM glueless_loads WHERE "object_url" = $1
  ORDER BY "loaded_at" DESC, "seq" DESC LIMIT 1;

-- 2. a fresh staging table, filled by the adapter

DROP TABLE IF EXISTS pg_temp."glueless_staging";
CREATE TEMP TABLE "glueless_staging" (c0 bigint, c1 text, c2 integer, c3 numeric(12, 2), "glueless_file" integer NOT NULL, "glueless_row" bigint NOT NULL) ON COMMIT DROP;

COPY pg_temp."glueless_staging" FROM STDIN (FORMAT binary);

-- 4. one row per key: the highest version, then the later file, then the later row

DELETE FROM pg_temp."glueless_staging" WHERE "glueless_row" IN (
  SELECT "glueless_row" FROM (
    SELECT "glueless_row", ROW_NUMBER() OVER (PARTITION BY c0 ORDER BY "glueless_file" DESC, "glueless_row" DESC) AS "glueless_rank"
    FROM pg_temp."glueless_staging") AS d
  WHERE d."glueless_rank" > 1);

-- 5. the upsert on the key

MERGE INTO "fact_orders"
  USING pg_temp."glueless_staging" AS s
  ON "fact_orders"."order_id" = s.c0
  WHEN MATCHED THEN UPDATE SET "customer" = s.c1, "quantity" = s.c2, "amount" = s.c3
  WHEN NOT MATCHED THEN INSERT ("order_id", "customer", "quantity", "amount") VALUES (s.c0, s.c1, s.c2, s.c3);

-- 6. one ledger row per loaded file

INSERT INTO glueless_loads ("object_url", "object_version", "fingerprint", "load_id", "dataset", "table_name", "rows_loaded", "loaded_at")
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- 2-5 straight into the table, when it is empty or the last tries were not refused (a key it
-- has, a key twice, or anything else it refuses, rolls back to the savepoint and the load
-- takes steps 2-5)

SELECT 1 FROM "fact_orders" LIMIT 1;

SAVEPOINT glueless_direct;

COPY "fact_orders" ("order_id", "customer", "quantity", "amount") FROM STDIN (FORMAT binary);

RELEASE SAVEPOINT glueless_direct;
