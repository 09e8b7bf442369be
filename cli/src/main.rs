//! `deployctl`: start a blue-green deploy, watch it, and approve or reject it at the gate.
//!
//! Every command talks to Temporal only; the deploy itself runs in the worker. Bad input is
//! refused here, before anything starts: an unknown environment, a malformed version, a deploy
//! already running. What only the worker can see (a missing image) fails the workflow's
//! preflight, and `start` waits for preflight so the error still comes back at once.

mod compose;
mod config;
mod output;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};
use deployctl_proto::v1::{
    ApproveSignal, DeployRequest, DeployStatus, Phase, RejectSignal, StepState,
};
use deployctl_workflows::{DEPLOY_TASK_QUEUE, DeployWorkflow, plan::PREFLIGHT};
use temporalio_client::{
    Client, WorkflowHandle, WorkflowQueryOptions, WorkflowSignalOptions, WorkflowStartOptions,
    errors::WorkflowStartError,
};

#[derive(Parser)]
#[command(
    name = "deployctl",
    version,
    about = "Blue-green deploys of a Docker Compose stack, as durable Temporal workflows"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    temporal: deployctl_worker::TemporalArgs,
    /// TOML file with more `[environments.NAME]`; `local` is built in.
    #[arg(long, env = "DEPLOYCTL_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// The Compose file of the stack, kept in step with each deploy when it exists.
    #[arg(
        long,
        env = "DEPLOYCTL_COMPOSE_FILE",
        default_value = "compose.yaml",
        global = true
    )]
    compose_file: PathBuf,
    /// Environment to act on.
    #[arg(
        long = "env",
        env = "DEPLOYCTL_ENV",
        default_value = "local",
        global = true
    )]
    environment: String,
}

#[derive(Subcommand)]
enum Command {
    /// Deploy a version: start the idle colour on it, switch traffic, roll cron and workers.
    Start {
        /// The image tag to deploy, e.g. v2.0.0.
        #[arg(long)]
        version: String,
        /// Hold the deploy before the traffic switch until `deployctl approve`.
        #[arg(long)]
        approve_before_switch: bool,
        /// Follow the deploy until it ends; exit non-zero if it did not complete.
        #[arg(long)]
        wait: bool,
    },
    /// Show the current (or last) deploy of the environment.
    Status {
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Let a deploy held at the gate switch traffic.
    Approve {
        #[arg(long, default_value = "")]
        comment: String,
        #[arg(long, env = "USER", default_value = "someone")]
        by: String,
    },
    /// Stop a deploy held at the gate; traffic stays on the live colour.
    Reject {
        #[arg(long)]
        reason: String,
        #[arg(long, env = "USER", default_value = "someone")]
        by: String,
    },
}

/// Exit codes: 0 done, 1 the deploy failed, 2 refused or unusable input, 3 rejected at the gate.
const FAILED: u8 = 1;
const REFUSED: u8 = 2;
const REJECTED: u8 = 3;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(REFUSED)
        }
    }
}

fn workflow_id(environment: &str) -> String {
    format!("deploy-{environment}")
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let environment = config::environment(cli.config.as_deref(), &cli.environment)?;
    if let Command::Start { version, .. } = &cli.command {
        config::check_version(version)?;
    }
    let client = deployctl_worker::connect(&cli.temporal, Duration::from_secs(5)).await?;
    let handle = client.get_workflow_handle::<DeployWorkflow>(workflow_id(&environment.name));
    match cli.command {
        Command::Start {
            version,
            approve_before_switch,
            wait,
        } => {
            let image = format!("{}:{version}", environment.image_repository);
            let compose_config_hashes =
                compose::config_hashes(&cli.compose_file, &environment.image_variables, &image)
                    .unwrap_or_else(|error| {
                        eprintln!("note: Compose will not see the deploy as up to date: {error:#}");
                        Default::default()
                    });
            let request = DeployRequest {
                environment: Some(environment),
                version,
                approve_before_switch,
                requested_by: std::env::var("USER").unwrap_or_else(|_| "deployctl".into()),
                compose_config_hashes,
            };
            start(&client, request, wait).await
        }
        Command::Status { json } => {
            let status = query(&handle).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", output::render(&status));
            }
            Ok(0)
        }
        Command::Approve { comment, by } => {
            require_gate(&handle).await?;
            handle
                .signal(
                    DeployWorkflow::approve,
                    ApproveSignal {
                        approved_by: by,
                        comment,
                    },
                    WorkflowSignalOptions::default(),
                )
                .await?;
            println!("approved: the deploy switches traffic now");
            Ok(0)
        }
        Command::Reject { reason, by } => {
            require_gate(&handle).await?;
            handle
                .signal(
                    DeployWorkflow::reject,
                    RejectSignal {
                        rejected_by: by,
                        reason,
                    },
                    WorkflowSignalOptions::default(),
                )
                .await?;
            println!("rejected: traffic stays on the live colour; the new colour is stopped");
            Ok(0)
        }
    }
}

async fn start(client: &Client, request: DeployRequest, wait: bool) -> anyhow::Result<u8> {
    let environment = request.environment.clone().unwrap_or_default();
    let id = workflow_id(&environment.name);
    let options = WorkflowStartOptions::new(DEPLOY_TASK_QUEUE, id.clone()).build();
    let version = request.version.clone();
    match client
        .start_workflow(DeployWorkflow::run, request, options)
        .await
    {
        Ok(_) => {}
        Err(WorkflowStartError::AlreadyStarted { .. }) => {
            let running = client.get_workflow_handle::<DeployWorkflow>(id.clone());
            let status = query(&running).await.unwrap_or_default();
            anyhow::bail!(
                "a deploy to {} is already running (version {}, {}): follow it with `deployctl status`, \
                 or approve/reject it if it waits at the gate",
                environment.name,
                status.version,
                output::phase_name(status.phase)
            );
        }
        Err(error) => return Err(error).context("starting the deploy workflow"),
    }
    println!(
        "deploy {version} to {} started: workflow {id}",
        environment.name
    );
    println!("Web UI: http://127.0.0.1:8233/namespaces/default/workflows/{id}");
    follow(&client.get_workflow_handle::<DeployWorkflow>(id), wait).await
}

/// Prints each step as it changes. Without `wait`, stops once preflight has passed.
async fn follow(handle: &WorkflowHandle<Client, DeployWorkflow>, wait: bool) -> anyhow::Result<u8> {
    let mut printed = DeployStatus::default();
    loop {
        let status = query(handle).await?;
        for line in output::changes(&printed, &status) {
            println!("{line}");
        }
        printed = status.clone();
        let phase = Phase::try_from(status.phase).unwrap_or_default();
        let preflight_done = status
            .steps
            .iter()
            .any(|s| s.name == PREFLIGHT && s.state == StepState::Done as i32);
        match phase {
            Phase::Completed => return Ok(0),
            Phase::Rejected => return Ok(REJECTED),
            Phase::Failed if !preflight_done => {
                eprintln!("error: refused before any change: {}", status.error);
                return Ok(REFUSED);
            }
            Phase::Failed => {
                eprintln!("error: the deploy failed: {}", status.error);
                return Ok(FAILED);
            }
            _ if !wait && preflight_done => {
                println!("preflight passed; follow the deploy with `deployctl status`");
                return Ok(0);
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

async fn query(handle: &WorkflowHandle<Client, DeployWorkflow>) -> anyhow::Result<DeployStatus> {
    handle
        .query(DeployWorkflow::status, (), WorkflowQueryOptions::default())
        .await
        .map_err(|error| match error {
            temporalio_client::errors::WorkflowQueryError::NotFound(_) => {
                anyhow::anyhow!("no deploy has run in this environment yet")
            }
            other => anyhow::Error::new(other).context("querying the deploy's status"),
        })
}

async fn require_gate(handle: &WorkflowHandle<Client, DeployWorkflow>) -> anyhow::Result<()> {
    let status = query(handle).await?;
    if status.phase != Phase::AwaitingApproval as i32 && status.phase != Phase::Running as i32 {
        anyhow::bail!(
            "the last deploy ({}) is {}, so there is nothing to approve or reject",
            status.version,
            output::phase_name(status.phase)
        );
    }
    Ok(())
}
