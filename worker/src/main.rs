//! `deployctl-worker`: a pool member that hosts deploys only. The app's own worker normally
//! hosts them (`deployctl_worker::join_pool`); this binary is the opt-in for running deploys
//! somewhere else, such as a host outside the Compose project.

use std::{path::PathBuf, process::ExitCode};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
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
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    if let Some(Command::Healthcheck) = cli.command {
        return deployctl_worker::healthcheck(&cli.ready_file);
    }
    deployctl_worker::init_tracing();
    // The `temporal` CLI's profile fills what no flag or variable set.
    let set_by_user = |id: &str| deployctl_worker::set_by_user(&matches, id);
    if let Err(error) = cli.pool.temporal.apply_profile(set_by_user) {
        tracing::error!("{error:#}");
        return ExitCode::FAILURE;
    }
    deployctl_activities::setup_failpoints();
    match deployctl_worker::join_pool(cli.pool, Vec::new(), Some(cli.ready_file)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
