//! The `cron` role: one scheduled job every few seconds, each run recorded in `cron_runs`
//! (container, start, end) so that two crons running at once would show as overlapping rows.
//! On SIGTERM the job in progress finishes before the process exits.

use std::{path::Path, time::Duration};

pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS cron_runs (
    id BIGSERIAL PRIMARY KEY,
    container TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ
)";

/// How long one job takes: long enough that an overlap could not hide between runs.
const JOB_DURATION: Duration = Duration::from_millis(700);

pub async fn run(interval: Duration, ready_file: &Path) -> anyhow::Result<()> {
    let pool = crate::wait_for_database().await?;
    sqlx::query(CREATE_TABLE).execute(&pool).await?;
    std::fs::write(ready_file, "cron")?;
    let container = crate::container_id();
    let version = crate::version();
    let terminated = deployctl_worker::wait_for_termination();
    tokio::pin!(terminated);
    let mut ticks = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = &mut terminated => break,
            _ = ticks.tick() => {}
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO cron_runs (container, version, started_at) VALUES ($1, $2, clock_timestamp()) RETURNING id",
        )
        .bind(&container)
        .bind(&version)
        .fetch_one(&pool)
        .await?;
        tokio::time::sleep(JOB_DURATION).await;
        sqlx::query("UPDATE cron_runs SET finished_at = clock_timestamp() WHERE id = $1")
            .bind(id)
            .execute(&pool)
            .await?;
    }
    tracing::info!("cron stopped after finishing its last job");
    Ok(())
}
