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
    /// The migrations whose latest attempt finished, by name.
    #[serde(default)]
    pub finished_names: Vec<String>,
}

impl MigrationProgress {
    /// At least `expected` migrations finished (rolled-back ones do not count), every one of
    /// `expected_names` among them, and none is running or failed.
    pub fn complete(&self, expected: u32, expected_names: &[String]) -> bool {
        self.table_exists
            && self.running == 0
            && self.failed.is_empty()
            && self.finished >= expected
            && self.missing(expected_names).is_empty()
    }

    /// The expected migrations that have not finished (yet).
    pub fn missing<'a>(&self, expected_names: &'a [String]) -> Vec<&'a String> {
        expected_names
            .iter()
            .filter(|name| !self.finished_names.contains(name))
            .collect()
    }

    /// Finished migrations the image does not carry: the schema is newer than the image, which
    /// expand/contract allows, and an operator should know.
    pub fn unknown_to(&self, expected_names: &[String]) -> Vec<String> {
        if expected_names.is_empty() {
            return Vec::new();
        }
        self.finished_names
            .iter()
            .filter(|name| !expected_names.contains(name))
            .cloned()
            .collect()
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
            (true, false, _) => {
                progress.finished += 1;
                progress.finished_names.push(name);
            }
            (false, false, Some(logs)) if !logs.is_empty() => progress.failed.push((name, logs)),
            (false, false, _) => progress.running += 1,
        }
    }
    Ok(progress)
}

/// Input of `await_migrations`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AwaitMigrations {
    /// How many migrations must have finished at least (the image's label, if it has one).
    pub expected: u32,
    pub timeout_seconds: u64,
    /// The migrations the image carries, by folder name: each must have finished.
    #[serde(default)]
    pub expected_names: Vec<String>,
}

/// The database activities.
pub struct DatabaseActivities {
    pub pool: PgPool,
}

#[temporalio_macros::activities]
impl DatabaseActivities {
    /// `_prisma_migrations` as it is now, without waiting (`deployctl check`).
    #[activity]
    pub async fn read_migrations(
        self: std::sync::Arc<Self>,
        _ctx: ActivityContext,
    ) -> Result<MigrationProgress, ActivityError> {
        migration_progress(&self.pool).await.map_err(crate::failure)
    }

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
            input.expected.max(input.expected_names.len() as u32)
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
            if progress.complete(input.expected, &input.expected_names) {
                return Ok(Some(progress));
            }
            let missing = progress.missing(&input.expected_names);
            match missing.first() {
                Some(first) => anyhow::bail!(
                    "{} of the image's migrations not finished yet ({first}, ...)",
                    missing.len()
                ),
                None => Ok(None),
            }
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
        assert!(progress.complete(2, &[]));
        assert!(progress.complete(1, &[]));
        assert!(!progress.complete(3, &[]));
        let running = MigrationProgress {
            running: 1,
            ..progress.clone()
        };
        assert!(!running.complete(2, &[]));
        let failed = MigrationProgress {
            failed: vec![("0003".into(), "syntax error".into())],
            ..progress.clone()
        };
        assert!(!failed.complete(2, &[]));
        // A migration resolved as rolled back is history: it neither counts nor blocks.
        let rolled_back = MigrationProgress {
            rolled_back: 1,
            ..progress.clone()
        };
        assert!(rolled_back.complete(2, &[]));
        assert!(!MigrationProgress::default().complete(0, &[]));
    }

    #[test]
    fn by_name_every_migration_the_image_carries_must_have_finished() {
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let progress = MigrationProgress {
            table_exists: true,
            finished: 2,
            finished_names: names(&["0001_init", "0002_orders"]),
            ..Default::default()
        };
        assert!(progress.complete(0, &names(&["0001_init", "0002_orders"])));
        // Enough rows, but not the one the image carries: the gate stays shut.
        let expected = names(&["0001_init", "0003_refunds"]);
        assert!(!progress.complete(2, &expected));
        assert_eq!(progress.missing(&expected), [&"0003_refunds".to_string()]);
        // A finished row the image does not know is reported, not a blocker.
        let older_image = names(&["0001_init"]);
        assert!(progress.complete(1, &older_image));
        assert_eq!(progress.unknown_to(&older_image), ["0002_orders"]);
        assert!(progress.unknown_to(&[]).is_empty());
    }
}
