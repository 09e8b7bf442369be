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
    ApproveSignal, BakeOptions, DeployRequest, DeployStatus, GateExpiry, Phase, RejectSignal,
    RollbackRequest, StepState, WorkerRollOptions,
};
use deployctl_workflows::{CheckEnvironmentWorkflow, DeployWorkflow, plan::PREFLIGHT};
use temporalio_client::{
    Client, WorkflowCancelOptions, WorkflowExecuteUpdateOptions, WorkflowGetResultOptions,
    WorkflowHandle, WorkflowQueryOptions, WorkflowStartOptions,
    errors::{WorkflowStartError, WorkflowUpdateError},
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
    /// Deploy a version: start the idle colour on it, switch traffic, roll cron and workers,
    /// bake, then update the old colour.
    Start {
        /// The image tag to deploy, e.g. v2.0.0.
        #[arg(long)]
        version: String,
        #[command(flatten)]
        options: DeployOptions,
        /// Follow the deploy until it ends; exit non-zero if it did not complete.
        #[arg(long)]
        wait: bool,
    },
    /// Check the environment, as the worker's configuration defines it, against the running
    /// stack: its containers, HAProxy backend and servers, each colour's health path and the
    /// image's migrations folder. Changes nothing; exits 2 if anything does not match.
    Config {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
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
    /// During the bake: traffic back to the old colour at once, then cron and workers. After
    /// it: deploy the previous version (or `--to VERSION`) through the normal workflow.
    Rollback {
        #[arg(long, default_value = "rollback requested")]
        reason: String,
        /// Deploy this version instead of the previous one (only after the bake).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, env = "USER", default_value = "someone")]
        by: String,
        #[command(flatten)]
        options: DeployOptions,
        /// Follow until the rollback ends.
        #[arg(long)]
        wait: bool,
    },
    /// Stop a running deploy at any step and return the stack to the last good state.
    Abort {
        #[arg(long)]
        reason: String,
        /// Follow until compensation has finished.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(clap::Args, Clone)]
struct DeployOptions {
    /// Hold the deploy before the traffic switch until `deployctl approve`.
    #[arg(long)]
    approve_before_switch: bool,
    /// The approval gate's deadline in seconds (0: none).
    #[arg(long, env = "DEPLOYCTL_APPROVAL_TIMEOUT", default_value_t = 3600)]
    approval_timeout: u32,
    /// What the gate does at its deadline.
    #[arg(long, value_enum, default_value_t = Expiry::Reject)]
    on_approval_timeout: Expiry,
    /// Seconds the old colour stays warm after the switch, with the new one watched.
    #[arg(long, env = "DEPLOYCTL_BAKE_SECONDS", default_value_t = 5)]
    bake_seconds: u32,
    /// Roll back by itself when more than this share of the new colour's answers are 5xx.
    #[arg(long, default_value_t = 0.05)]
    bake_max_5xx_ratio: f64,
    /// ...and at least this many 5xx were seen.
    #[arg(long, default_value_t = 3)]
    bake_min_5xx: u32,
    /// Worker containers after the deploy; by default the environment's `worker_replicas`.
    #[arg(long)]
    workers: Option<u32>,
    /// Ramp the new worker version before it becomes Current, e.g. `10,50` (percent of new
    /// workflows), each step held for `--worker-ramp-pause` seconds.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=99))]
    worker_ramp: Vec<u32>,
    #[arg(long, default_value_t = 30)]
    worker_ramp_pause: u32,
    /// How long the old worker version may keep open Pinned workflows before the deploy fails
    /// and names them.
    #[arg(long, default_value_t = 600)]
    drain_timeout: u32,
    /// New worker replicas started before the hand-over; the rest start once the old ones are
    /// gone (0: all at once).
    #[arg(long, default_value_t = 0)]
    worker_surge: u32,
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum Expiry {
    Reject,
    Proceed,
}

/// Exit codes: 0 done; 1 the deploy failed; 2 refused before any change (or unusable input);
/// 3 rejected at the gate; 4 rolled back; 5 aborted.
const FAILED: u8 = 1;
const REFUSED: u8 = 2;
const REJECTED: u8 = 3;
const ROLLED_BACK: u8 = 4;
const ABORTED: u8 = 5;

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
    if let Command::Start { version, .. }
    | Command::Rollback {
        to: Some(version), ..
    } = &cli.command
    {
        config::check_version(version)?;
    }
    let client = deployctl_worker::connect(&cli.temporal, Duration::from_secs(5)).await?;
    let handle = client.get_workflow_handle::<DeployWorkflow>(workflow_id(&environment.name));
    // The environment's pool polls its own queue (the shop's workers run deployctl-worker).
    let task_queue = environment.deploys_task_queue().to_string();
    match cli.command {
        Command::Start {
            version,
            options,
            wait,
        } => {
            let request = deploy_request(&cli.compose_file, environment, version, options);
            start(&client, &task_queue, request, wait).await
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
            let input = ApproveSignal {
                approved_by: by,
                comment,
            };
            let answer = handle
                .execute_update(DeployWorkflow::approve, input, update_options())
                .await
                .map_err(refused)?;
            println!("{}", answer.message);
            Ok(0)
        }
        Command::Reject { reason, by } => {
            let input = RejectSignal {
                rejected_by: by,
                reason,
            };
            let answer = handle
                .execute_update(DeployWorkflow::reject, input, update_options())
                .await
                .map_err(refused)?;
            println!("{}", answer.message);
            Ok(0)
        }
        Command::Rollback {
            reason,
            to,
            by,
            options,
            wait,
        } => {
            let status = query(&handle).await?;
            if status.phase == Phase::Baking as i32 && to.is_none() {
                let asked = std::time::Instant::now();
                let answer = handle
                    .execute_update(
                        DeployWorkflow::rollback,
                        RollbackRequest {
                            requested_by: by,
                            reason,
                        },
                        update_options(),
                    )
                    .await
                    .map_err(refused)?;
                println!(
                    "{} (accepted in {} ms)",
                    answer.message,
                    asked.elapsed().as_millis()
                );
                return follow(&handle, wait, true).await;
            }
            if is_running(status.phase) {
                anyhow::bail!(
                    "the deploy of {} is {}: a rollback by traffic flip needs it baking; \
                     use `deployctl abort --reason ...` to stop it and return to the last good state",
                    status.version,
                    output::phase_name(status.phase)
                );
            }
            let version = match to {
                Some(version) => version,
                None => previous_version(&status)?,
            };
            println!("rolling back to {version} through a normal deploy");
            let request = deploy_request(&cli.compose_file, environment, version, options);
            start(&client, &task_queue, request, wait).await
        }
        Command::Config { json } => {
            check_environment(&client, &task_queue, &environment.name, json).await
        }
        Command::Abort { reason, wait } => {
            let status = query(&handle).await?;
            if !is_running(status.phase) {
                anyhow::bail!(
                    "the last deploy ({}) is {}: there is nothing to abort",
                    status.version,
                    output::phase_name(status.phase)
                );
            }
            handle
                .cancel(WorkflowCancelOptions::builder().reason(reason).build())
                .await
                .context("asking Temporal to cancel the deploy")?;
            println!(
                "abort requested: the deploy stops and returns the stack to the last good state"
            );
            follow(&handle, wait, true).await
        }
    }
}

fn deploy_request(
    compose_file: &std::path::Path,
    environment: deployctl_proto::v1::Environment,
    version: String,
    options: DeployOptions,
) -> DeployRequest {
    let hashes = |variables: Vec<(String, Option<String>)>| {
        compose::config_hashes(compose_file, &variables).unwrap_or_else(|error| {
            eprintln!("note: Compose will not see the deploy as up to date: {error:#}");
            Default::default()
        })
    };
    let deployed = environment
        .images_by_variable(&version)
        .into_iter()
        .map(|(variable, image)| (variable, Some(image)))
        .collect();
    let as_now = environment
        .image_variables
        .iter()
        .map(|variable| (variable.clone(), None))
        .collect();
    // Two runs of the Compose tool (about 0.7 s each for docker-compose v1), side by side.
    let (compose_config_hashes, previous_config_hashes) = std::thread::scope(|scope| {
        let previous = scope.spawn(|| hashes(as_now));
        (hashes(deployed), previous.join().unwrap_or_default())
    });
    DeployRequest {
        compose_config_hashes,
        previous_config_hashes,
        version,
        approve_before_switch: options.approve_before_switch,
        requested_by: std::env::var("USER").unwrap_or_else(|_| "deployctl".into()),
        approval_timeout_seconds: options.approval_timeout,
        approval_expiry: match options.on_approval_timeout {
            Expiry::Reject => GateExpiry::Reject,
            Expiry::Proceed => GateExpiry::Proceed,
        } as i32,
        bake: Some(BakeOptions {
            seconds: options.bake_seconds,
            max_5xx_ratio: options.bake_max_5xx_ratio,
            min_5xx: options.bake_min_5xx,
        }),
        worker_roll: Some(WorkerRollOptions {
            ramp_percentages: options.worker_ramp,
            ramp_pause_seconds: options.worker_ramp_pause,
            drain_timeout_seconds: options.drain_timeout,
            surge: options.worker_surge,
            replicas: options.workers.unwrap_or_default(),
        }),
        environment_name: environment.name,
        environment: None,
    }
}

/// Runs the worker's read-only check of the environment, and prints what it found.
async fn check_environment(
    client: &Client,
    task_queue: &str,
    environment: &str,
    json: bool,
) -> anyhow::Result<u8> {
    let id = format!("check-environment-{environment}");
    let options = WorkflowStartOptions::new(task_queue, id).build();
    let handle = client
        .start_workflow(
            CheckEnvironmentWorkflow::run,
            environment.to_string(),
            options,
        )
        .await
        .context("starting the environment check")?;
    let report = handle
        .get_result(Default::default())
        .await
        .context("waiting for the environment check")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for line in &report.matches {
            println!("  ✓ {line}");
        }
        for line in &report.problems {
            println!("  ✗ {line}");
        }
        match report.problems.len() {
            0 => println!("environment {environment} matches the running stack"),
            count => println!(
                "environment {environment}: {count} settings do not match the running stack"
            ),
        }
    }
    Ok(if report.problems.is_empty() {
        0
    } else {
        REFUSED
    })
}

fn is_running(phase: i32) -> bool {
    matches!(
        Phase::try_from(phase).unwrap_or_default(),
        Phase::Running | Phase::AwaitingApproval | Phase::Baking | Phase::RollingBack
    )
}

/// The version the live colour ran before the last deploy.
fn previous_version(status: &DeployStatus) -> anyhow::Result<String> {
    status
        .previous_image
        .rsplit_once(':')
        .map(|(_, tag)| tag.to_string())
        .filter(|tag| !tag.is_empty())
        .context("the last deploy recorded no previous version: name one with --to VERSION")
}

fn update_options() -> WorkflowExecuteUpdateOptions {
    WorkflowExecuteUpdateOptions::default()
}

/// An update the workflow refused: its validator's words, which say why.
fn refused(error: WorkflowUpdateError) -> anyhow::Error {
    match error {
        WorkflowUpdateError::Failed(failure) => anyhow::anyhow!("refused: {}", failure.message),
        WorkflowUpdateError::NotFound(_) => {
            anyhow::anyhow!("no deploy has run in this environment yet")
        }
        other => anyhow::Error::new(other).context("sending the update"),
    }
}

async fn start(
    client: &Client,
    task_queue: &str,
    request: DeployRequest,
    wait: bool,
) -> anyhow::Result<u8> {
    let environment = request.environment_name.clone();
    let id = workflow_id(&environment);
    let options = WorkflowStartOptions::new(task_queue, id.clone()).build();
    let version = request.version.clone();
    match client
        .start_workflow(DeployWorkflow::run, request, options)
        .await
    {
        Ok(_) => {}
        Err(WorkflowStartError::AlreadyStarted { .. }) => {
            let running = client.get_workflow_handle::<DeployWorkflow>(id.clone());
            let status = query(&running).await.unwrap_or_default();
            let step = status
                .steps
                .iter()
                .find(|s| s.state == StepState::Running as i32)
                .map(|s| s.name.as_str())
                .unwrap_or("starting");
            anyhow::bail!(
                "a deploy to {} is already running: version {} ({}, step {step}), started by {} at {}. \
                 Follow it with `deployctl status`, approve or reject it at its gate, or stop it \
                 with `deployctl abort --reason ...`",
                environment,
                status.version,
                output::phase_name(status.phase),
                status.requested_by,
                status.started_at,
            );
        }
        Err(error) => return Err(error).context("starting the deploy workflow"),
    }
    println!("deploy {version} to {environment} started: workflow {id}");
    println!("Web UI: http://127.0.0.1:8233/namespaces/default/workflows/{id}");
    follow(
        &client.get_workflow_handle::<DeployWorkflow>(id),
        wait,
        false,
    )
    .await
}

/// Prints each step as it changes. Without `wait`, stops once preflight has passed (or, for
/// `already_started`, at once).
async fn follow(
    handle: &WorkflowHandle<Client, DeployWorkflow>,
    wait: bool,
    already_started: bool,
) -> anyhow::Result<u8> {
    let mut printed = DeployStatus::default();
    let mut unreachable_since: Option<std::time::Instant> = None;
    // The workflow's end, long-polled beside the status polls, so the last lines print as soon
    // as the deploy ends rather than at the next poll.
    let ended = handle.get_result(WorkflowGetResultOptions::default());
    tokio::pin!(ended);
    let mut end_seen = false;
    loop {
        // Temporal or the worker may restart under a deploy; keep watching through it.
        let status = match query(handle).await {
            Ok(status) => {
                if unreachable_since.take().is_some() {
                    println!("  (reconnected)");
                }
                status
            }
            Err(error) => {
                let since = *unreachable_since.get_or_insert_with(|| {
                    println!("  (lost contact with the deploy: {error:#}; retrying)");
                    std::time::Instant::now()
                });
                if since.elapsed() > Duration::from_secs(180) {
                    return Err(error.context("no answer from the deploy for 180 s"));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for line in output::changes(&printed, &status) {
            println!("{line}");
        }
        printed = status.clone();
        let phase = Phase::try_from(status.phase).unwrap_or_default();
        let preflight_done = already_started
            || status
                .steps
                .iter()
                .any(|s| s.name == PREFLIGHT && s.state == StepState::Done as i32);
        match phase {
            Phase::Completed => return Ok(0),
            Phase::Rejected => return Ok(REJECTED),
            Phase::RolledBack => return Ok(ROLLED_BACK),
            Phase::Aborted => return Ok(ABORTED),
            Phase::Failed if !preflight_done => {
                eprintln!("error: refused before any change: {}", status.error);
                return Ok(REFUSED);
            }
            Phase::Failed => {
                eprintln!(
                    "error: the deploy failed at {}: {}",
                    status.failed_step, status.error
                );
                return Ok(FAILED);
            }
            _ if !wait && preflight_done => {
                if !already_started {
                    println!("preflight passed; follow the deploy with `deployctl status`");
                }
                return Ok(0);
            }
            _ if end_seen => tokio::time::sleep(Duration::from_millis(300)).await,
            _ => {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                    _ = &mut ended => end_seen = true,
                }
            }
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
