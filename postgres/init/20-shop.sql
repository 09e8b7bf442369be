-- The shop's database (examples/shop), beside ecomweb's, with its own owner. deployctl's
-- reader may read the shop's _prisma_migrations and nothing else, as in ecomweb.
CREATE ROLE shop LOGIN PASSWORD 'shop-db-s3cret';
CREATE DATABASE shop OWNER shop;
GRANT CONNECT ON DATABASE shop TO deployctl_reader;
\connect shop
CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id                  VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum            VARCHAR(64) NOT NULL,
    finished_at         TIMESTAMPTZ,
    migration_name      VARCHAR(255) NOT NULL,
    logs                TEXT,
    rolled_back_at      TIMESTAMPTZ,
    started_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count INTEGER NOT NULL DEFAULT 0
);
ALTER TABLE _prisma_migrations OWNER TO shop;
GRANT USAGE ON SCHEMA public TO deployctl_reader;
GRANT SELECT ON _prisma_migrations TO deployctl_reader;
