//! One pool member: the app's task queues and the deploy's, in one process, as versions of the
//! environment's Worker Deployment, with the SDK's Prometheus metrics.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use temporalio_common::telemetry::{
    PrometheusExporterOptions, TelemetryOptions,
    metrics::{CoreMeter, TemporalMeter},
    start_prometheus_metric_exporter, telemetry_init,
};
use temporalio_sdk::{Runtime, Worker, WorkerOptions, runtime::RuntimeOptions};

use crate::{
    DEPLOY_TASK_QUEUE, DeployArgs, TemporalArgs, VersioningArgs, connect_with_metrics,
    register_deploy, versioning::adopt_when_registered, wait_for_termination,
};

/// Everything a pool member needs besides the app's own tasks.
#[derive(Clone, Debug, clap::Args)]
pub struct PoolArgs {
    #[command(flatten)]
    pub temporal: TemporalArgs,
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(flatten)]
    pub versioning: VersioningArgs,
    /// Host the deploy workflow and its activities too (the pool is one; `false` leaves
    /// deploys to a separate `deployctl-worker`).
    #[arg(long, env = "DEPLOYCTL_DEPLOYS", default_value_t = true, action = clap::ArgAction::Set)]
    pub deploys: bool,
    #[arg(long, env = "DEPLOYCTL_TASK_QUEUE", default_value = DEPLOY_TASK_QUEUE)]
    pub deploy_task_queue: String,
    /// Where the SDK's Prometheus exporter listens, host:port. Unset: no metrics.
    #[arg(long, env = "METRICS_ADDRESS")]
    pub metrics_address: Option<SocketAddr>,
}

/// Joins the pool: runs the app's workers (`app`, each with its task queue, workflows and
/// activities) and, unless `deploys` is off, the deploy worker, until SIGTERM or Ctrl-C. Then
/// no task queue is polled any more, `ready_file` goes at once (the healthcheck fails), and
/// in-flight tasks get the grace period to finish.
pub async fn join_pool(
    args: PoolArgs,
    app: Vec<WorkerOptions>,
    ready_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (runtime, client_metrics) = runtime(&args)?;
    let client =
        connect_with_metrics(&args.temporal, Duration::from_secs(120), client_metrics).await?;
    let mut members = Vec::new();
    for mut options in app {
        options.deployment_options = args.versioning.app_options();
        members.push(options);
    }
    if args.deploys {
        let mut options = WorkerOptions::new(args.deploy_task_queue.clone()).build();
        register_deploy(&mut options, &args.deploy, &client).await?;
        options.deployment_options = args.versioning.deploy_options();
        members.push(options);
    }
    anyhow::ensure!(
        !members.is_empty(),
        "nothing to run: no app task queue and no deploys"
    );
    let task_queues: Vec<String> = members.iter().map(|m| m.task_queue.clone()).collect();
    let mut workers = Vec::new();
    for mut options in members {
        options.graceful_shutdown_period = Some(Duration::from_secs(25));
        // A workflow whose worker died waits this long on that worker's sticky queue before
        // another worker may take it (the SDK default is 10 s).
        options.sticky_queue_schedule_to_start_timeout = Duration::from_secs(3);
        workers.push(Worker::new(&runtime, client.clone(), options)?);
    }
    let shutdowns: Vec<_> = workers.iter().map(|w| w.shutdown_handle()).collect();
    let ready = ready_file.clone();
    tokio::spawn(async move {
        wait_for_termination().await;
        tracing::info!("termination requested: polling no more, finishing in-flight tasks");
        if let Some(path) = &ready {
            let _ = std::fs::remove_file(path);
        }
        for shutdown in &shutdowns {
            shutdown();
        }
    });
    if let Some(version) = args.versioning.version() {
        tracing::info!(%version, "joining the Worker Deployment");
        tokio::spawn(adopt_when_registered(client.clone(), version));
    }
    if let Some(path) = &ready_file {
        std::fs::write(path, task_queues.join(","))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    tracing::info!(?task_queues, "worker polling");
    let outcome = futures::future::try_join_all(workers.iter_mut().map(|w| w.run())).await;
    if let Some(path) = &ready_file {
        let _ = std::fs::remove_file(path);
    }
    outcome?;
    tracing::info!("worker stopped cleanly");
    Ok(())
}

/// The SDK runtime, exporting its own worker metrics (slots, tasks) to Prometheus, each
/// tagged with the deployment and Build ID; and the meter for the client's (poll latency).
fn runtime(args: &PoolArgs) -> anyhow::Result<(Runtime, Option<TemporalMeter>)> {
    let meter = match args.metrics_address {
        Some(address) => {
            let mut tags = std::collections::HashMap::new();
            tags.insert("build_id".to_string(), args.versioning.build_id());
            if let Some(name) = &args.versioning.deployment_name {
                tags.insert("worker_deployment".to_string(), name.clone());
            }
            let exporter = start_prometheus_metric_exporter(
                PrometheusExporterOptions::builder()
                    .socket_addr(address)
                    .global_tags(tags)
                    .build(),
            )
            .with_context(|| format!("starting the Prometheus exporter on {address}"))?;
            tracing::info!(address = %exporter.bound_addr, "Prometheus metrics at /metrics");
            Some(exporter.meter as Arc<dyn CoreMeter>)
        }
        None => None,
    };
    // The same exporter, behind the SDK's `temporal_` prefix, for the client's metrics.
    let client_metrics = match &meter {
        Some(meter) => telemetry_init(TelemetryOptions::builder().metrics(meter.clone()).build())?
            .get_temporal_metric_meter(),
        None => None,
    };
    let telemetry = TelemetryOptions::builder().maybe_metrics(meter).build();
    let options = RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(|error| anyhow::anyhow!(error))?;
    Ok((Runtime::from_current_tokio(options)?, client_metrics))
}
