//! Postgres, through sqlx: is the database up, and has the new colour finished its migrations?
//!
//! The API applies its migrations when it starts and records them, as Prisma does, in
//! `_prisma_migrations`, one row per attempt. The latest attempt of each migration decides:
//! no `finished_at` and no `logs` is still running; `logs` but no `finished_at` failed;
//! `rolled_back_at` set means an operator resolved it as rolled back (`prisma migrate resolve`),
//! which is history, not a blocker, and does not count as applied.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row, postgres::PgPoolOptions};
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::Permanent;

/// What `_prisma_migrations` says right now.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MigrationProgress {
    /// The table exists (the first API start creates it).
    pub table_exists: bool,
    pub finished: u32,
    pub running: u32,
    pub rolled_back: u32,
    /// Name and logs of each failed migration.
    pub failed: Vec<(String, String)>,
}

impl MigrationProgress {
    /// At least `expected` migrations finished (rolled-back ones do not count), and none is
    /// running or failed.
    pub fn complete(&self, expected: u32) -> bool {
        self.table_exists
            && self.running == 0
            && self.failed.is_empty()
            && self.finished >= expected
    }
}

/// A lazy pool: building it touches nothing, so a worker starts before Postgres does.
pub fn pool(database_url: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_lazy(database_url)
        .context("parsing DATABASE_URL")
}

/// `SELECT 1`, as the seed's startup scripts check readiness.
pub async fn ready(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::query("SELECT 1")
        .execute(pool)
        .await
        .context("database is not ready (SELECT 1)")?;
    Ok(())
}

pub async fn migration_progress(pool: &PgPool) -> anyhow::Result<MigrationProgress> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('public._prisma_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await
            .context("looking for _prisma_migrations")?;
    if !exists {
        return Ok(MigrationProgress::default());
    }
    let rows = sqlx::query(
        "SELECT DISTINCT ON (migration_name) migration_name, logs, \
                finished_at IS NOT NULL AS finished, rolled_back_at IS NOT NULL AS rolled_back \
         FROM _prisma_migrations ORDER BY migration_name, started_at DESC",
    )
    .fetch_all(pool)
    .await
    .context("reading _prisma_migrations")?;
    let mut progress = MigrationProgress {
        table_exists: true,
        ..Default::default()
    };
    for row in rows {
        let name: String = row.try_get("migration_name")?;
        let logs: Option<String> = row.try_get("logs")?;
        let finished: bool = row.try_get("finished")?;
        let rolled_back: bool = row.try_get("rolled_back")?;
        match (finished, rolled_back, logs) {
            (_, true, _) => progress.rolled_back += 1,
            (true, false, _) => progress.finished += 1,
            (false, false, Some(logs)) if !logs.is_empty() => progress.failed.push((name, logs)),
            (false, false, _) => progress.running += 1,
        }
    }
    Ok(progress)
}

/// Input of `await_migrations`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AwaitMigrations {
    pub expected: u32,
    pub timeout_seconds: u64,
}

/// The database activities.
pub struct DatabaseActivities {
    pub pool: PgPool,
}

#[temporalio_macros::activities]
impl DatabaseActivities {
    /// Waits until every migration the new image carries is finished.
    #[activity]
    pub async fn await_migrations(
        self: std::sync::Arc<Self>,
        ctx: ActivityContext,
        input: AwaitMigrations,
    ) -> Result<MigrationProgress, ActivityError> {
        crate::crash_point("await-migrations");
        let what = format!(
            "{} migrations finished in _prisma_migrations",
            input.expected
        );
        let timeout = std::time::Duration::from_secs(input.timeout_seconds);
        crate::poll_until(&ctx, &what, timeout, || async {
            ready(&self.pool).await?;
            let progress = migration_progress(&self.pool).await?;
            if let Some((name, logs)) = progress.failed.first() {
                return Err(Permanent::MigrationFailed {
                    name: name.clone(),
                    logs: logs.clone(),
                }
                .into());
            }
            Ok(progress.complete(input.expected).then_some(progress))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_needs_the_expected_count_and_nothing_pending() {
        let progress = MigrationProgress {
            table_exists: true,
            finished: 2,
            ..Default::default()
        };
        assert!(progress.complete(2));
        assert!(progress.complete(1));
        assert!(!progress.complete(3));
        let running = MigrationProgress {
            running: 1,
            ..progress.clone()
        };
        assert!(!running.complete(2));
        let failed = MigrationProgress {
            failed: vec![("0003".into(), "syntax error".into())],
            ..progress.clone()
        };
        assert!(!failed.complete(2));
        // A migration resolved as rolled back is history: it neither counts nor blocks.
        let rolled_back = MigrationProgress {
            rolled_back: 1,
            ..progress.clone()
        };
        assert!(rolled_back.complete(2));
        assert!(!MigrationProgress::default().complete(0));
    }
}
