-- SQLite load of `prices` into "main"."prices": one transaction

-- 1. the ledger decision, per file

SELECT "load_id" FROM main."glueless_loads" WHERE "object_url" = ?1 AND "object_version" = ?2;

SELECT "fingerprint", "load_id" FROM main."glueless_loads" WHERE "object_url" = ?1
  ORDER BY "loaded_at" DESC, rowid DESC LIMIT 1;

-- 2. a fresh staging table, filled by the adapter

DROP TABLE IF EXISTS temp."glueless_staging";
CREATE TEMP TABLE "glueless_staging" (c0 TEXT, c1 TEXT, c2 TEXT, "glueless_file" INTEGER NOT NULL, "glueless_row" INTEGER NOT NULL, "glueless_sort");

INSERT INTO temp."glueless_staging" VALUES (?1, ?2, ?3, ?4, ?5, ?6);

-- 3. staged rows not newer than the fact row with their key

DELETE FROM temp."glueless_staging" WHERE "glueless_row" IN (
  SELECT s."glueless_row" FROM temp."glueless_staging" AS s
  JOIN "main"."prices" AS f ON f."sku" = s.c0
  WHERE s.c2 IS NULL OR (f."revision" IS NOT NULL AND NOT (CAST(s.c2 AS REAL) > CAST(f."revision" AS REAL) OR (CAST(s.c2 AS REAL) = CAST(f."revision" AS REAL) AND CASE WHEN (substr(s.c2, 1, 1) = '-') <> (substr(f."revision", 1, 1) = '-') THEN substr(f."revision", 1, 1) = '-' WHEN substr(s.c2, 1, 1) = '-' THEN length(s.c2) < length(f."revision") OR (length(s.c2) = length(f."revision") AND s.c2 < f."revision") ELSE length(s.c2) > length(f."revision") OR (length(s.c2) = length(f."revision") AND s.c2 > f."revision") END))));

-- 4. one row per key: the highest version, then the later file, then the later row

DELETE FROM temp."glueless_staging" WHERE "glueless_row" IN (
  SELECT "glueless_row" FROM (
    SELECT "glueless_row", ROW_NUMBER() OVER (PARTITION BY c0 ORDER BY "glueless_sort" DESC NULLS LAST, "glueless_file" DESC, "glueless_row" DESC) AS "glueless_rank"
    FROM temp."glueless_staging") AS d
  WHERE d."glueless_rank" > 1);

-- 5. the upsert on the key

INSERT INTO "main"."prices" ("sku", "price", "revision")
  SELECT c0, c1, c2 FROM temp."glueless_staging" WHERE true
  ON CONFLICT ("sku") DO UPDATE SET "price" = excluded."price", "revision" = excluded."revision";

-- 6. one ledger row per loaded file

INSERT INTO main."glueless_loads" ("object_url", "object_version", "fingerprint", "load_id", "dataset", "table_name", "rows_loaded", "loaded_at")
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8);

-- 2-5 when the fact table is empty and has no trigger: the rows straight into it

SELECT 1 FROM "main"."prices" LIMIT 1;

INSERT INTO "main"."prices" ("sku", "price", "revision") VALUES (?1, ?2, ?3)
  ON CONFLICT ("sku") DO UPDATE SET "price" = excluded."price", "revision" = excluded."revision"
  WHERE "main"."prices"."revision" IS NULL OR (excluded."revision" IS NOT NULL AND NOT (CAST("main"."prices"."revision" AS REAL) > CAST(excluded."revision" AS REAL) OR (CAST("main"."prices"."revision" AS REAL) = CAST(excluded."revision" AS REAL) AND CASE WHEN (substr("main"."prices"."revision", 1, 1) = '-') <> (substr(excluded."revision", 1, 1) = '-') THEN substr(excluded."revision", 1, 1) = '-' WHEN substr("main"."prices"."revision", 1, 1) = '-' THEN length("main"."prices"."revision") < length(excluded."revision") OR (length("main"."prices"."revision") = length(excluded."revision") AND "main"."prices"."revision" < excluded."revision") ELSE length("main"."prices"."revision") > length(excluded."revision") OR (length("main"."prices"."revision") = length(excluded."revision") AND "main"."prices"."revision" > excluded."revision") END)));

-- 2-5 into a table with rows: the rows straight into it (a key it has, or one that comes
-- twice, rolls back to the savepoint and the load takes steps 2-5)

SAVEPOINT glueless_append;

INSERT INTO "main"."prices" ("sku", "price", "revision") VALUES (?1, ?2, ?3);

RELEASE glueless_append;
