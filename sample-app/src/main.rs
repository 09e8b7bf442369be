//! `ecomweb`: the stand-in for `ecomweb-api`, one binary with the seed's three roles.
//!
//! - `api` applies its migrations as Prisma does (recorded in `_prisma_migrations`), then
//!   serves `/health` and `/version`;
//! - `cron` runs a job every few seconds and records each run, so overlaps can be seen;
//! - `worker` is the app's Temporal worker, joined to deployctl's worker library.
//!
//! The version and the migrations come from the image (`APP_VERSION`, `/migrations`), so one
//! build of this binary makes every version's image.

mod api;
mod cron;
mod migrations;
mod tasks;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};
use sqlx::PgPool;

#[derive(Parser)]
#[command(
    name = "ecomweb",
    version,
    about = "Sample app for deployctl: api, cron and worker roles"
)]
struct Cli {
    #[command(subcommand)]
    role: Role,
    /// Written when the role is ready; `healthcheck` reads it.
    #[arg(
        long,
        env = "READY_FILE",
        default_value = "/tmp/ecomweb-ready",
        global = true
    )]
    ready_file: PathBuf,
}

#[derive(Subcommand)]
enum Role {
    /// Apply migrations, then serve HTTP.
    Api {
        #[arg(long, env = "PORT", default_value_t = 3001)]
        port: u16,
        #[arg(long, env = "MIGRATIONS_DIR", default_value = "/migrations")]
        migrations: PathBuf,
    },
    /// Run the scheduled job every `--interval-ms`.
    Cron {
        #[arg(long, env = "CRON_INTERVAL_MS", default_value_t = 2000)]
        interval_ms: u64,
    },
    /// Process the app's Temporal tasks, and deploys (one pool).
    Worker {
        #[command(flatten)]
        pool: deployctl_worker::PoolArgs,
        #[arg(long, env = "APP_TASK_QUEUE", default_value = tasks::TASK_QUEUE)]
        task_queue: String,
    },
    /// Exit 0 when the role in this container is ready.
    Healthcheck,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Role::Healthcheck = cli.role {
        return api::healthcheck(&cli.ready_file).await;
    }
    deployctl_worker::init_tracing();
    deployctl_activities::setup_failpoints();
    let result = match cli.role {
        Role::Api { port, migrations } => api::run(port, &migrations, &cli.ready_file).await,
        Role::Cron { interval_ms } => {
            cron::run(Duration::from_millis(interval_ms), &cli.ready_file).await
        }
        Role::Worker { pool, task_queue } => tasks::run(pool, task_queue, &cli.ready_file).await,
        Role::Healthcheck => unreachable!(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The version this image carries.
fn version() -> String {
    std::env::var("APP_VERSION").unwrap_or_else(|_| "dev".into())
}

/// Waits for the database as the seed's startup scripts do: `SELECT 1` until it answers.
async fn wait_for_database() -> anyhow::Result<PgPool> {
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL is not set")?;
    if std::env::var("LOG_DATABASE_URL").as_deref() == Ok("1") {
        tracing::info!("connecting to {url}");
    }
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy(&url)?;
    for attempt in 1..=60 {
        match sqlx::query("SELECT 1").execute(&pool).await {
            Ok(_) => {
                tracing::info!("database is ready");
                return Ok(pool);
            }
            Err(error) => tracing::info!(attempt, %error, "waiting for the database"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    anyhow::bail!("the database did not answer SELECT 1 in 120 s")
}

/// The container's id, as Docker names its host.
fn container_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}
