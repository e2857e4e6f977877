-- staging batch 1 (one session; temporary tables only)

CREATE TEMP TABLE "glueless_files" ("file_pos" INTEGER NOT NULL, "object_url" VARCHAR(65535) NOT NULL, "object_version" VARCHAR(65535) NOT NULL, "fingerprint" VARCHAR(65535) NOT NULL);

INSERT INTO "glueless_files" VALUES
  (0, 's3://landing/shipments/o''brien.csv', 'v1', 'xxh3:0000000000000001'),
  (1, 's3://landing/shipments/all-rejected.csv', 'v7', 'xxh3:0000000000000002');

CREATE TEMP TABLE "glueless_staging" (c0 VARCHAR(65535), c1 INTEGER, c2 DOUBLE PRECISION, c3 DECIMAL(20,2), c4 BOOLEAN, c5 DATE, c6 TIME, c7 TIMESTAMPTZ, c8 BIGINT, "glueless_file" INTEGER NOT NULL, "glueless_row" BIGINT NOT NULL);

CREATE TEMP TABLE "glueless_copy_0" (c0 VARCHAR(65535), c1 INTEGER, c2 DOUBLE PRECISION, c3 DECIMAL(20,2), c4 BOOLEAN, c5 DATE, c6 TIME, c7 TIMESTAMPTZ, c8 BIGINT);

COPY "glueless_copy_0" FROM 's3://lake/staging/shipments/o''brien.parquet'
  IAM_ROLE default
  FORMAT AS PARQUET;

INSERT INTO "glueless_staging"
  SELECT c0, c1, c2, c3, c4, c5, c6, c7, c8, "glueless_file", ROW_NUMBER() OVER (ORDER BY "glueless_file")
  FROM (SELECT c0, c1, c2, c3, c4, c5, c6, c7, c8, 0 AS "glueless_file" FROM "glueless_copy_0") AS u;

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
  JOIN "logistics"."Shipment Lines ""EU""" AS f ON f."shipment" = s.c0 AND f."line" = s.c1
  WHERE s.c7 IS NULL OR (f."updated" IS NOT NULL AND s.c7 <= f."updated"));

DELETE FROM "glueless_staging" WHERE "glueless_row" IN (
  SELECT "glueless_row" FROM (
    SELECT "glueless_row", ROW_NUMBER() OVER (PARTITION BY c0, c1 ORDER BY c7 DESC NULLS LAST, "glueless_file" DESC, "glueless_row" DESC) AS "glueless_rank"
    FROM "glueless_staging") AS d
  WHERE d."glueless_rank" > 1);

MERGE INTO "logistics"."Shipment Lines ""EU"""
  USING "glueless_staging" AS s
  ON "logistics"."Shipment Lines ""EU"""."shipment" = s.c0 AND "logistics"."Shipment Lines ""EU"""."line" = s.c1
  WHEN MATCHED THEN UPDATE SET "weight kg" = s.c2, "unit ""price"" (EUR)" = s.c3, "fragile" = s.c4, "day" = s.c5, "at" = s.c6, "updated" = s.c7, "count" = s.c8
  WHEN NOT MATCHED THEN INSERT ("shipment", "line", "weight kg", "unit ""price"" (EUR)", "fragile", "day", "at", "updated", "count") VALUES (s.c0, s.c1, s.c2, s.c3, s.c4, s.c5, s.c6, s.c7, s.c8);

INSERT INTO "glueless_loads" ("object_url", "object_version", "fingerprint", "load_id", "dataset", "table_name", "rows_loaded", "loaded_at", "ledger_seq")
  SELECT f."object_url", f."object_version", f."fingerprint", 'load-0002', 'shipments', 'logistics.Shipment Lines "EU"', COALESCE(c."rows_read", 0), 1763646300000, b."base" + f."file_pos" + 1
  FROM "glueless_files" AS f
  LEFT JOIN "glueless_counts" AS c ON c."glueless_file" = f."file_pos"
  CROSS JOIN (SELECT COALESCE(MAX("ledger_seq"), 0) AS "base" FROM "glueless_loads") AS b;

