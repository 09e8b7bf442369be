"""Applies prisma/migrations the way `prisma migrate deploy` does, for an image without Node.

deployctl's example of a stack it did not shape: the API image knows its migrations only as
folders (prisma/migrations/<name>/migration.sql), carries no deployctl label, and leaves the
record Prisma leaves in _prisma_migrations, so deployctl's gate reads it as it reads Prisma's:
- one row per attempt: id (a UUID), checksum (SHA-256 of migration.sql), migration_name,
  started_at, and finished_at plus applied_steps_count = 1 once it has run;
- a failure keeps its row with logs and no finished_at, and, as Prisma's P3009 does, stops
  every later start until an operator resolves it (`UPDATE ... SET rolled_back_at = now()`,
  which is what `prisma migrate resolve --rolled-back` does);
- Prisma's advisory lock, so two colours starting at once never migrate together.
"""

import hashlib
import os
import sys
import uuid

PRISMA_LOCK = 72707369

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id                  VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum            VARCHAR(64) NOT NULL,
    finished_at         TIMESTAMPTZ,
    migration_name      VARCHAR(255) NOT NULL,
    logs                TEXT,
    rolled_back_at      TIMESTAMPTZ,
    started_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count INTEGER NOT NULL DEFAULT 0
)"""


class MigrationError(Exception):
    pass


def local_migrations(directory):
    names = [
        name
        for name in os.listdir(directory)
        if os.path.isfile(os.path.join(directory, name, "migration.sql"))
    ]
    return sorted(names)


def deploy(connection, directory):
    """Applies what is not applied yet; returns the names applied."""
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", (PRISMA_LOCK,))
        try:
            return _deploy_locked(connection, cursor, directory)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (PRISMA_LOCK,))


def _deploy_locked(connection, cursor, directory):
    cursor.execute(CREATE_TABLE)
    cursor.execute(
        "SELECT migration_name, started_at FROM _prisma_migrations "
        "WHERE finished_at IS NULL AND rolled_back_at IS NULL AND logs IS NOT NULL "
        "ORDER BY started_at"
    )
    failed = cursor.fetchone()
    if failed:
        raise MigrationError(
            "Error: P3009\n\nmigrate found failed migrations in the target database, new "
            f"migrations will not be applied.\nThe `{failed[0]}` migration started at "
            f"{failed[1]} failed"
        )
    cursor.execute(
        "SELECT migration_name FROM _prisma_migrations "
        "WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL"
    )
    applied = {row[0] for row in cursor.fetchall()}
    done = []
    for name in local_migrations(directory):
        if name in applied:
            continue
        with open(os.path.join(directory, name, "migration.sql"), "rb") as file:
            script = file.read()
        row_id = str(uuid.uuid4())
        cursor.execute(
            "INSERT INTO _prisma_migrations "
            "(id, checksum, migration_name, started_at, applied_steps_count) "
            "VALUES (%s, %s, %s, now(), 0)",
            (row_id, hashlib.sha256(script).hexdigest(), name),
        )
        print(f"Applying migration `{name}`", flush=True)
        try:
            connection.autocommit = False
            with connection.cursor() as migration:
                migration.execute(script.decode())
            connection.commit()
        except Exception as error:  # the database's own words go into logs, as Prisma's do
            connection.rollback()
            connection.autocommit = True
            code = getattr(error, "pgcode", None) or "unknown"
            logs = f"Database error code: {code}\n\nDatabase error:\n{error}".strip()
            cursor.execute("UPDATE _prisma_migrations SET logs = %s WHERE id = %s", (logs, row_id))
            raise MigrationError(f"Migration `{name}` failed to apply.\n{logs}") from error
        connection.autocommit = True
        cursor.execute(
            "UPDATE _prisma_migrations SET finished_at = now(), applied_steps_count = 1 "
            "WHERE id = %s",
            (row_id,),
        )
        done.append(name)
    return done


if __name__ == "__main__":
    import psycopg2

    directory = sys.argv[1] if len(sys.argv) > 1 else "/app/prisma/migrations"
    connection = psycopg2.connect(os.environ["DATABASE_URL"])
    try:
        names = deploy(connection, directory)
    except MigrationError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
    finally:
        connection.close()
    print(f"{len(names)} migrations applied", flush=True)
