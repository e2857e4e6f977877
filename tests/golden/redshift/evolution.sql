-- ensure_table: create (one batch, one transaction)

CREATE TABLE IF NOT EXISTS "glueless_loads" (
  "object_url" VARCHAR(65535) NOT NULL,
  "object_version" VARCHAR(65535) NOT NULL,
  "fingerprint" VARCHAR(65535) NOT NULL,
  "load_id" VARCHAR(65535) NOT NULL,
  "dataset" VARCHAR(65535) NOT NULL,
  "table_name" VARCHAR(65535) NOT NULL,
  "rows_loaded" BIGINT NOT NULL,
  "loaded_at" BIGINT NOT NULL,
  "ledger_seq" BIGINT NOT NULL,
  PRIMARY KEY ("object_url", "object_version")
);

CREATE SCHEMA IF NOT EXISTS "sales";

CREATE TABLE IF NOT EXISTS "sales"."fact_everything" (
  "id" BIGINT NOT NULL,
  "name" VARCHAR(65535),
  "qty" BIGINT,
  "weight" DOUBLE PRECISION,
  "active" BOOLEAN,
  "day" DATE,
  "at" TIME,
  "updated" TIMESTAMPTZ,
  "vintage" INTEGER,
  "unit ""price"" (EUR)" DECIMAL(20,2),
  PRIMARY KEY ("id")
);

-- ensure_table: add a column (one batch, one transaction)

CREATE TABLE IF NOT EXISTS "glueless_loads" (
  "object_url" VARCHAR(65535) NOT NULL,
  "object_version" VARCHAR(65535) NOT NULL,
  "fingerprint" VARCHAR(65535) NOT NULL,
  "load_id" VARCHAR(65535) NOT NULL,
  "dataset" VARCHAR(65535) NOT NULL,
  "table_name" VARCHAR(65535) NOT NULL,
  "rows_loaded" BIGINT NOT NULL,
  "loaded_at" BIGINT NOT NULL,
  "ledger_seq" BIGINT NOT NULL,
  PRIMARY KEY ("object_url", "object_version")
);

CREATE SCHEMA IF NOT EXISTS "sales";

CREATE TABLE IF NOT EXISTS "glueless_schema_changes" ("dataset" VARCHAR(65535) NOT NULL, "table_name" VARCHAR(65535) NOT NULL, "ddl" VARCHAR(65535) NOT NULL, "fingerprint" VARCHAR(65535) NOT NULL, "changed_at" BIGINT NOT NULL);

LOCK TABLE "glueless_loads";

ALTER TABLE "sales"."fact_everything" ADD COLUMN "unit ""price"" (EUR)" DECIMAL(20,2);

INSERT INTO "glueless_schema_changes" ("dataset", "table_name", "ddl", "fingerprint", "changed_at") VALUES ('everything', 'sales.fact_everything', 'ALTER TABLE "sales"."fact_everything" ADD COLUMN "unit ""price"" (EUR)" DECIMAL(20,2);', 'xxh3:0123456789abcdef', 1700000000000);

