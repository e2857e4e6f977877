-- SQLite load of `orders` into "main"."fact_orders": one transaction

-- 1. the ledger decision, per file

SELECT "load_id" FROM main."glueless_loads" WHERE "object_url" = ?1 AND "object_version" = ?2;

SELECT "fingerprint", "load_id" FROM main."glueless_loads" WHERE "object_url" = ?1
  ORDER BY "loaded_at" DESC, rowid DESC LIMIT 1;

-- 2. a fresh staging table, filled by the adapter

DROP TABLE IF EXISTS temp."glueless_staging";
CREATE TEMP TABLE "glueless_staging" (c0 INTEGER, c1 TEXT, c2 INTEGER, c3 TEXT, c4 INTEGER, c5 TEXT, c6 TEXT, c7 TEXT, c8 TEXT, c9 TEXT, "glueless_file" INTEGER NOT NULL, "glueless_row" INTEGER NOT NULL, "glueless_sort");

INSERT INTO temp."glueless_staging" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13);

-- 3. staged rows not newer than the fact row with their key

DELETE FROM temp."glueless_staging" WHERE "glueless_row" IN (
  SELECT s."glueless_row" FROM temp."glueless_staging" AS s
  JOIN "main"."fact_orders" AS f ON f."order_id" = s.c0
  WHERE s.c1 IS NULL OR (f."order_ts" IS NOT NULL AND s.c1 <= f."order_ts"));

-- 4. one row per key: the highest version, then the later file, then the later row

DELETE FROM temp."glueless_staging" WHERE "glueless_row" IN (
  SELECT "glueless_row" FROM (
    SELECT "glueless_row", ROW_NUMBER() OVER (PARTITION BY c0 ORDER BY "glueless_sort" DESC NULLS LAST, "glueless_file" DESC, "glueless_row" DESC) AS "glueless_rank"
    FROM temp."glueless_staging") AS d
  WHERE d."glueless_rank" > 1);

-- 5. the upsert on the key

INSERT INTO "main"."fact_orders" ("order_id", "order_ts", "customer_id", "sku", "quantity", "unit_price", "currency", "country", "status", "note")
  SELECT c0, c1, c2, c3, c4, c5, c6, c7, c8, c9 FROM temp."glueless_staging" WHERE true
  ON CONFLICT ("order_id") DO UPDATE SET "order_ts" = excluded."order_ts", "customer_id" = excluded."customer_id", "sku" = excluded."sku", "quantity" = excluded."quantity", "unit_price" = excluded."unit_price", "currency" = excluded."currency", "country" = excluded."country", "status" = excluded."status", "note" = excluded."note";

-- 6. one ledger row per loaded file

INSERT INTO main."glueless_loads" ("object_url", "object_version", "fingerprint", "load_id", "dataset", "table_name", "rows_loaded", "loaded_at")
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8);

-- 2-5 when the fact table is empty and has no trigger: the rows straight into it

SELECT 1 FROM "main"."fact_orders" LIMIT 1;

INSERT INTO "main"."fact_orders" ("order_id", "order_ts", "customer_id", "sku", "quantity", "unit_price", "currency", "country", "status", "note") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
  ON CONFLICT ("order_id") DO UPDATE SET "order_ts" = excluded."order_ts", "customer_id" = excluded."customer_id", "sku" = excluded."sku", "quantity" = excluded."quantity", "unit_price" = excluded."unit_price", "currency" = excluded."currency", "country" = excluded."country", "status" = excluded."status", "note" = excluded."note"
  WHERE "main"."fact_orders"."order_ts" IS NULL OR (excluded."order_ts" IS NOT NULL AND "main"."fact_orders"."order_ts" <= excluded."order_ts");

-- 2-5 into a table with rows: the rows straight into it (a key it has, or one that comes
-- twice, rolls back to the savepoint and the load takes steps 2-5)

SAVEPOINT glueless_append;

INSERT INTO "main"."fact_orders" ("order_id", "order_ts", "customer_id", "sku", "quantity", "unit_price", "currency", "country", "status", "note") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10);

RELEASE glueless_append;
