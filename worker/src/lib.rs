//! The Temporal worker, as a library: one pool for the app's tasks and for deploys.
//!
//! An app joins the pool with one call, [`join_pool`], handing over its own `WorkerOptions`
//! (its task queue, workflows and activities). The pool adds the deploy workflow on the
//! `deployctl` task queue, makes every worker a version of the environment's Worker
//! Deployment (Build ID = the image version), serves the SDK's Prometheus metrics, and on
//! SIGTERM stops polling and lets in-flight tasks finish. So the same horizontally scaled
//! containers run the app and roll themselves.

mod pool;
mod versioning;

use std::{path::PathBuf, str::FromStr, time::Duration};

use anyhow::Context;
use deployctl_activities::{
    compose::ComposeActivities,
    database::{self, DatabaseActivities},
    docker::{self, DockerActivities},
    haproxy::{Haproxy, HaproxyActivities},
    health::{HealthActivities, HealthChecker},
    identity,
    temporal::TemporalActivities,
};
pub use deployctl_workflows::DEPLOY_TASK_QUEUE;
use deployctl_workflows::DeployWorkflow;
pub use pool::{PoolArgs, join_pool};
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use temporalio_common::telemetry::metrics::TemporalMeter;
use temporalio_sdk::WorkerOptions;
pub use versioning::{AppBehavior, VersioningArgs};

/// Where Temporal is. Flags, or the standard `TEMPORAL_ADDRESS` / `TEMPORAL_NAMESPACE`.
#[derive(Clone, Debug, clap::Args)]
pub struct TemporalArgs {
    /// Temporal frontend, host:port.
    #[arg(
        long = "address",
        env = "TEMPORAL_ADDRESS",
        default_value = "127.0.0.1:7233"
    )]
    pub address: String,
    #[arg(
        long = "namespace",
        env = "TEMPORAL_NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,
}

/// What the deploy activities reach: HAProxy's Runtime API and Postgres. Docker comes from
/// `DOCKER_HOST`, as for the Docker CLI.
#[derive(Clone, Debug, clap::Args)]
pub struct DeployArgs {
    /// HAProxy Runtime API: a unix socket path, or tcp:host:port.
    #[arg(
        long,
        env = "HAPROXY_RUNTIME_API",
        default_value = "/var/run/haproxy/admin.sock"
    )]
    pub haproxy_runtime_api: String,
    /// Where to save HAProxy's server state, read back by `load-server-state-from-file`.
    #[arg(long, env = "HAPROXY_STATE_FILE")]
    pub haproxy_state_file: Option<PathBuf>,
    /// `rise` and `fall` of the backend's health checks, as in haproxy.cfg.
    #[arg(long, env = "HAPROXY_CHECK_RISE", default_value_t = 2)]
    pub haproxy_check_rise: u32,
    #[arg(long, env = "HAPROXY_CHECK_FALL", default_value_t = 2)]
    pub haproxy_check_fall: u32,
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Compose's `.env`, as this worker sees it; a completed deploy records its image there.
    #[arg(long, env = "COMPOSE_ENV_FILE")]
    pub compose_env_file: Option<PathBuf>,
}

/// Connects to Temporal, retrying while the server comes up.
pub async fn connect(temporal: &TemporalArgs, patience: Duration) -> anyhow::Result<Client> {
    connect_with_metrics(temporal, patience, None).await
}

/// [`connect`], recording the client's own metrics (RPC and long-poll latency) in `metrics`.
pub async fn connect_with_metrics(
    temporal: &TemporalArgs,
    patience: Duration,
    metrics: Option<TemporalMeter>,
) -> anyhow::Result<Client> {
    let address = if temporal.address.contains("://") {
        temporal.address.clone()
    } else {
        format!("http://{}", temporal.address)
    };
    let url = Url::from_str(&address).with_context(|| format!("TEMPORAL_ADDRESS {address:?}"))?;
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let options = ConnectionOptions::new(url.clone())
            .identity(identity())
            .maybe_metrics_meter(metrics.clone())
            .build();
        match Connection::connect(options).await {
            Ok(connection) => {
                return Client::new(
                    connection,
                    ClientOptions::new(temporal.namespace.clone()).build(),
                )
                .context("creating the Temporal client");
            }
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::info!(%error, address, "Temporal not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(error) => {
                return Err(error).with_context(|| format!("connecting to Temporal at {address}"));
            }
        }
    }
}

/// Registers the deploy workflow and its activities, one per real part.
pub async fn register_deploy(
    options: &mut WorkerOptions,
    deploy: &DeployArgs,
    client: &Client,
) -> anyhow::Result<()> {
    let haproxy = Haproxy {
        address: deploy.haproxy_runtime_api.parse()?,
        state_file: deploy.haproxy_state_file.clone(),
        check_rise: deploy.haproxy_check_rise,
        check_fall: deploy.haproxy_check_fall,
    };
    options.register_workflow::<DeployWorkflow>()?;
    options.register_activities(DockerActivities {
        docker: docker::connect().await?,
    });
    options.register_activities(HaproxyActivities { haproxy });
    options.register_activities(DatabaseActivities {
        pool: database::pool(
            deploy
                .database_url
                .as_deref()
                .context("DATABASE_URL is not set: the deploy awaits migrations in Postgres")?,
        )?,
    });
    options.register_activities(ComposeActivities {
        env_file: deploy.compose_env_file.clone(),
    });
    options.register_activities(HealthActivities {
        checker: HealthChecker::new(),
    });
    options.register_activities(TemporalActivities {
        client: client.clone(),
    });
    Ok(())
}

/// Resolves on SIGTERM (docker stop) or Ctrl-C.
pub async fn wait_for_termination() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The healthcheck subcommand: healthy while the worker polls. The pool writes the ready file
/// once its workers poll and removes it the moment SIGTERM stops their polling.
pub fn healthcheck(ready_file: &std::path::Path) -> std::process::ExitCode {
    if ready_file.exists() {
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!(
            "{} does not exist: the worker is not polling",
            ready_file.display()
        );
        std::process::ExitCode::FAILURE
    }
}

/// Logs as `RUST_LOG` says, `info` by default.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}
