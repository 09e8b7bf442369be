//! `deployctl-worker`: runs deploys. Polls the `deployctl` task queue with the deploy workflow
//! and its activities, and drains on SIGTERM.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use deployctl_worker::{DEPLOY_TASK_QUEUE, DeployArgs, TemporalArgs};
use temporalio_sdk::WorkerOptions;

#[derive(Parser)]
#[command(
    name = "deployctl-worker",
    version,
    about = "Runs deployctl's deploy workflows"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    temporal: TemporalArgs,
    #[command(flatten)]
    deploy: DeployArgs,
    #[arg(long, env = "DEPLOYCTL_TASK_QUEUE", default_value = DEPLOY_TASK_QUEUE)]
    task_queue: String,
    /// Written once polling, removed on exit; `healthcheck` looks for it.
    #[arg(long, env = "WORKER_READY_FILE", default_value = "/tmp/worker-ready")]
    ready_file: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Exit 0 if the worker is polling (for a Docker HEALTHCHECK).
    Healthcheck,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck) = cli.command {
        return deployctl_worker::healthcheck(&cli.ready_file);
    }
    deployctl_worker::init_tracing();
    deployctl_activities::setup_failpoints();
    match run(cli.temporal, cli.task_queue, cli.deploy, cli.ready_file).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    temporal: TemporalArgs,
    task_queue: String,
    deploy: DeployArgs,
    ready_file: PathBuf,
) -> anyhow::Result<()> {
    let client = deployctl_worker::connect(&temporal, Duration::from_secs(120)).await?;
    let mut options = WorkerOptions::new(task_queue).build();
    deployctl_worker::register_deploy(&mut options, &deploy).await?;
    deployctl_worker::run(client, options, Some(ready_file)).await
}
