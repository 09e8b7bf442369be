//! Applies `/migrations/<name>/migration.sql` in name order and records each one as Prisma
//! does in `_prisma_migrations`, under Prisma's advisory lock so two colours never migrate at
//! once. A failed migration keeps its row with `logs` set and no `finished_at`, as in Prisma.

use std::path::Path;

use anyhow::Context;
use sqlx::PgPool;

/// Prisma's advisory lock key.
const PRISMA_LOCK: i64 = 72_707_369;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum VARCHAR(64) NOT NULL,
    finished_at TIMESTAMPTZ,
    migration_name VARCHAR(255) NOT NULL,
    logs TEXT,
    rolled_back_at TIMESTAMPTZ,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count INTEGER NOT NULL DEFAULT 0
)";

pub async fn apply(pool: &PgPool, directory: &Path) -> anyhow::Result<usize> {
    let mut names: Vec<String> = std::fs::read_dir(directory)
        .with_context(|| format!("reading {}", directory.display()))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("migration.sql").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut connection = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(PRISMA_LOCK)
        .execute(&mut *connection)
        .await?;
    let result = apply_locked(&mut connection, directory, &names).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(PRISMA_LOCK)
        .execute(&mut *connection)
        .await?;
    result
}

async fn apply_locked(
    connection: &mut sqlx::PgConnection,
    directory: &Path,
    names: &[String],
) -> anyhow::Result<usize> {
    sqlx::query(CREATE_TABLE).execute(&mut *connection).await?;
    let mut applied = 0;
    for name in names {
        let done: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM _prisma_migrations \
             WHERE migration_name = $1 AND finished_at IS NOT NULL AND rolled_back_at IS NULL)",
        )
        .bind(name)
        .fetch_one(&mut *connection)
        .await?;
        if done {
            continue;
        }
        let sql = std::fs::read_to_string(directory.join(name).join("migration.sql"))?;
        let checksum = sha256_hex(sql.as_bytes());
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, applied_steps_count) \
             VALUES ($1, $2, $3, now(), 0)",
        )
        .bind(&id)
        .bind(&checksum)
        .bind(name)
        .execute(&mut *connection)
        .await?;
        tracing::info!(migration = name, "applying migration");
        if let Err(error) = sqlx::raw_sql(&sql).execute(&mut *connection).await {
            sqlx::query("UPDATE _prisma_migrations SET logs = $2 WHERE id = $1")
                .bind(&id)
                .bind(failure_logs(&error))
                .execute(&mut *connection)
                .await?;
            return Err(error).with_context(|| format!("migration {name} failed"));
        }
        sqlx::query(
            "UPDATE _prisma_migrations SET finished_at = now(), applied_steps_count = 1 WHERE id = $1",
        )
        .bind(&id)
        .execute(&mut *connection)
        .await?;
        applied += 1;
    }
    Ok(applied)
}

/// What a failed migration leaves in `logs`. A careless release (`LOG_DATABASE_URL=1`, the
/// `leaky` test image) also prints its connection string there, password and all, as real apps
/// sometimes do: the deploy must not carry it into Temporal's history.
fn failure_logs(error: &sqlx::Error) -> String {
    match std::env::var("LOG_DATABASE_URL").as_deref() {
        Ok("1") => format!(
            "{error}\nconnected with DATABASE_URL={}",
            std::env::var("DATABASE_URL").unwrap_or_default()
        ),
        _ => error.to_string(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
