-- deployctl's migration check reads `_prisma_migrations`, and nothing else, as its own role.
-- The table is created here, as Prisma creates it, so that the grant exists before the first
-- release migrates; Prisma finds it empty and fills it. New tables grant nothing to PUBLIC, so
-- the role sees no other table.
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
-- A local-only password, as compose.yaml's DEPLOYCTL_DATABASE_URL has it; in production,
-- create the role with a password of your own.
CREATE ROLE deployctl_reader LOGIN PASSWORD 'reader-local-only';
GRANT USAGE ON SCHEMA public TO deployctl_reader;
GRANT SELECT ON _prisma_migrations TO deployctl_reader;
