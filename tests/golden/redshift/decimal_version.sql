-- staging batch 1 (one session; temporary tables only)

CREATE TEMP TABLE "glueless_files" ("file_pos" INTEGER NOT NULL, "object_url" VARCHAR(65535) NOT NULL, "object_version" VARCHAR(65535) NOT NULL, "fingerprint" VARCHAR(65535) NOT NULL);

INSERT INTO "glueless_files" VALUES
  (0, 's3://landing/x.csv', 'v1', 'xxh3:1');

CREATE TEMP TABLE "glueless_staging" (c0 VARCHAR(65535), c1 DECIMAL(12,2), c2 DECIMAL(20,4), "glueless_file" INTEGER NOT NULL, "glueless_row" BIGINT NOT NULL);

CREATE TEMP TABLE "glueless_copy_0" (c0 VARCHAR(65535), c1 DECIMAL(12,2), c2 DECIMAL(20,4));

COPY "glueless_copy_0" FROM 's3://lake/staging/x.parquet'
  IAM_ROLE default
  FORMAT AS PARQUET;

INSERT INTO "glueless_staging"
  SELECT c0, c1, c2, "glueless_file", ROW_NUMBER() OVER (ORDER BY "glueless_file")
  FROM (SELECT c0, c1, c2, 0 AS "glueless_file" FROM "glueless_copy_0") AS u;

CREATE TEMP TABLE "glueless_counts" AS
  SELECT "glueless_file", COUNT(*) AS "rows_read" FROM "glueless_staging" GROUP BY "glueless_file";

-- commit batch (same session; one transaction)

LOCK TABLE "glueless_loads";

DELETE FROM "glueless_files" WHERE "file_pos" IN (
  SELECT f."file_pos" FROM "glueless_files" AS f
  JOIN (SELECT "object_url", "object_version", "fingerprint",
      ROW_NUMBER() OVER (PARTITION BY "object_url" ORDER BY "loaded_at" DESC, "ledger_seq" DESC) AS "recency"
    FROM "glueless_loads" WHERE "object_url" IN (SELECT "object_url" FROM "glueless_files")) AS l
    ON l."object_url" = f."object_url"
  WHERE l."object_version" = f."object_version" OR (l."recency" = 1 AND l."fingerprint" = f."fingerprint"));

DELETE FROM "glueless_staging" WHERE "glueless_file" NOT IN (SELECT "file_pos" FROM "glueless_files");

DELETE FROM "glueless_staging" WHERE "glueless_row" IN (
  SELECT s."glueless_row" FROM "glueless_staging" AS s
  JOIN "prices" AS f ON f."sku" = s.c0
  WHERE s.c2 IS NULL OR (f."revision" IS NOT NULL AND s.c2 <= f."revision"));

DELETE FROM "glueless_staging" WHERE "glueless_row" IN (
  SELECT "glueless_row" FROM (
    SELECT "glueless_row", ROW_NUMBER() OVER (PARTITION BY c0 ORDER BY c2 DESC NULLS LAST, "glueless_file" DESC, "glueless_row" DESC) AS "glueless_rank"
    FROM "glueless_staging") AS d
  WHERE d."glueless_rank" > 1);

MERGE INTO "prices"
  USING "glueless_staging" AS s
  ON "prices"."sku" = s.c0
  WHEN MATCHED THEN UPDATE SET "price" = s.c1, "revision" = s.c2
  WHEN NOT MATCHED THEN INSERT ("sku", "price", "revision") VALUES (s.c0, s.c1, s.c2);

INSERT INTO "glueless_loads" ("object_url", "object_version", "fingerprint", "load_id", "dataset", "table_name", "rows_loaded", "loaded_at", "ledger_seq")
  SELECT f."object_url", f."object_version", f."fingerprint", 'load-0004', 'prices', 'prices', COALESCE(c."rows_read", 0), 1763646300000, b."base" + f."file_pos" + 1
  FROM "glueless_files" AS f
  LEFT JOIN "glueless_counts" AS c ON c."glueless_file" = f."file_pos"
  CROSS JOIN (SELECT COALESCE(MAX("ledger_seq"), 0) AS "base" FROM "glueless_loads") AS b;

