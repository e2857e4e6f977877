-- SQLite load of `tags` into "main"."tags": one transaction

-- 1. the ledger decision, per file

SELECT "load_id" FROM main."glueless_loads" WHERE "object_url" = ?1 AND "object_version" = ?2;

SELECT "fingerprint", "load_id" FROM main."glueless_loads" WHERE "object_url" = ?1
  ORDER BY "loaded_at" DESC, rowid DESC LIMIT 1;

-- 2. a fresh staging table, filled by the adapter

DROP TABLE IF EXISTS temp."glueless_staging";
CREATE TEMP TABLE "glueless_staging" (c0 INTEGER, c1 TEXT, "glueless_file" INTEGER NOT NULL, "glueless_row" INTEGER NOT NULL, "glueless_sort");

INSERT INTO temp."glueless_staging" VALUES (?1, ?2, ?3, ?4, ?5);

-- 3. every column is the key: a staged row whose key is in the table changes nothing

DELETE FROM temp."glueless_staging" WHERE "glueless_row" IN (
  SELECT s."glueless_row" FROM temp."glueless_staging" AS s
  JOIN "main"."tags" AS f ON f."item" = s.c0 AND f."tag" = s.c1);

-- 4. one row per key: the highest version, then the later file, then the later row

DELETE FROM temp."glueless_staging" WHERE "glueless_row" IN (
  SELECT "glueless_row" FROM (
    SELECT "glueless_row", ROW_NUMBER() OVER (PARTITION BY c0, c1 ORDER BY "glueless_file" DESC, "glueless_row" DESC) AS "glueless_rank"
    FROM temp."glueless_staging") AS d
  WHERE d."glueless_rank" > 1);

-- 5. the upsert on the key

INSERT INTO "main"."tags" ("item", "tag")
  SELECT c0, c1 FROM temp."glueless_staging" WHERE true
  ON CONFLICT ("item", "tag") DO NOTHING;

-- 6. one ledger row per loaded file

INSERT INTO main."glueless_loads" ("object_url", "object_version", "fingerprint", "load_id", "dataset", "table_name", "rows_loaded", "loaded_at")
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8);

-- 2-5 when the fact table is empty and has no trigger: the rows straight into it

SELECT 1 FROM "main"."tags" LIMIT 1;

INSERT INTO "main"."tags" ("item", "tag") VALUES (?1, ?2)
  ON CONFLICT ("item", "tag") DO NOTHING;

-- 2-5 into a table with rows: the rows straight into it (a key it has, or one that comes
-- twice, rolls back to the savepoint and the load takes steps 2-5)

SAVEPOINT glueless_append;

INSERT INTO "main"."tags" ("item", "tag") VALUES (?1, ?2);

RELEASE glueless_append;
