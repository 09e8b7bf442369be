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
        let started = chrono::Utc::now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO cron_runs (container, version, started_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(&container)
        .bind(&version)
        .bind(started)
        .fetch_one(&pool)
        .await?;
        tokio::time::sleep(JOB_DURATION).await;
        record_finish(&pool, id, chrono::Utc::now()).await?;
    }
    tracing::info!("cron stopped after finishing its last job");
    Ok(())
}

/// Records when a job ended. The job did end, so if the database is away (a restart) the
/// write is retried until it is back: an unfinished row would read as a cron still running.
async fn record_finish(
    pool: &sqlx::PgPool,
    id: i64,
    finished: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let mut attempts = 0;
    loop {
        match sqlx::query("UPDATE cron_runs SET finished_at = $2 WHERE id = $1")
            .bind(id)
            .bind(finished)
            .execute(pool)
            .await
        {
            Ok(_) => return Ok(()),
            Err(error) if attempts < 300 => {
                attempts += 1;
                tracing::info!(%error, "recording the job's end; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}
