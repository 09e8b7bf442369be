//! `deployctl-worker`: a pool member that hosts deploys only. The app's own worker normally
//! hosts them (`deployctl_worker::join_pool`); this binary is the opt-in for running deploys
//! somewhere else, such as a host outside the Compose project.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use deployctl_worker::PoolArgs;

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
    pool: PoolArgs,
    /// Written once polling, removed when polling stops; `healthcheck` looks for it.
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
    match deployctl_worker::join_pool(cli.pool, Vec::new(), Some(cli.ready_file)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
