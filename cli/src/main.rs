//! `deployctl`: start a blue-green deploy, watch it, and approve or reject it at the gate.
//!
//! Every command talks to Temporal only; the deploy itself runs in the worker. Bad input is
//! refused here, before anything starts: an unknown environment, a malformed version, a deploy
//! already running. What only the worker can see (a missing image) fails the workflow's
//! preflight, and `start` waits for preflight so the error still comes back at once.

mod compose;
mod config;
mod exit;
mod history;
mod output;
mod watch;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use deployctl_proto::v1::{
    ApproveSignal, BakeOptions, DeployRequest, DeployStatus, GateExpiry, Phase, RejectSignal,
    RollbackRequest, StepState, WorkerRollOptions,
};
use deployctl_workflows::{
    CheckEnvironmentWorkflow, ChecklistWorkflow, DeployWorkflow, visibility,
};
use temporalio_client::{
    Client, WorkflowCancelOptions, WorkflowExecuteUpdateOptions, WorkflowGetResultOptions,
    WorkflowHandle, WorkflowQueryOptions, WorkflowStartOptions,
    errors::{WorkflowStartError, WorkflowUpdateError},
};
use temporalio_common::{MemoValues, search_attributes::SearchAttributes};

#[derive(Parser)]
#[command(
    name = "deployctl",
    version,
    about = "Blue-green deploys of a Docker Compose stack, as durable Temporal workflows",
    after_help = exit::HELP
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
    /// Print one JSON document on stdout, whatever the command (the words go to stderr).
    #[arg(long, global = true)]
    json: bool,
    /// The Temporal Web UI, for the links `deployctl` prints.
    #[arg(
        long,
        env = "TEMPORAL_UI_ADDRESS",
        default_value = "http://127.0.0.1:8233",
        global = true
    )]
    ui_address: String,
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
    Config,
    /// The seed's monitoring checklist, run by a worker against the live stack: the API
    /// answers /health through HAProxy, HAProxy lists both colours with one live, the cron runs
    /// exactly once, the workers run and poll Temporal, Redis answers, the migrations are
    /// complete. One line per item; exits 1 if any fails.
    Check,
    /// Show the current (or last) deploy of the environment; exits with its outcome's code.
    Status,
    /// Follow the current (or last) deploy live until it ends: each step with its time, the
    /// retries, the gate's commands. Goes on through a restart of Temporal or of the worker;
    /// exits with the deploy's outcome.
    Watch,
    /// The environment's past deploys, newest first: versions, outcome, how long, who started
    /// them and who answered the gate (from Temporal's visibility).
    History {
        /// How many deploys to show.
        #[arg(long, default_value_t = 10)]
        limit: usize,
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
    /// Print the shell completion script, e.g. `deployctl completions bash >
    /// /etc/bash_completion.d/deployctl`.
    Completions { shell: clap_complete::Shell },
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

/// How a command ended: its exit code, and the document `--json` prints.
#[derive(Default, serde::Serialize)]
struct Ended {
    exit_code: u8,
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    web_ui: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<DeployStatus>,
    /// `status`, `config` and `completions` print their own document instead.
    #[serde(skip)]
    document: Option<serde_json::Value>,
}

impl Ended {
    fn with_code(exit_code: u8, message: impl Into<String>) -> Self {
        Self {
            exit_code,
            message: message.into(),
            ..Default::default()
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let terminal = output::Terminal { json: cli.json };
    let ended = run(cli, &matches, terminal).await.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        Ended {
            exit_code: exit::of_error(&error),
            error: Some(format!("{error:#}")),
            ..Default::default()
        }
    });
    if terminal.json {
        let document = match &ended.document {
            Some(document) => serde_json::to_string_pretty(document),
            None => serde_json::to_string_pretty(&ended),
        };
        println!("{}", document.unwrap_or_default());
    }
    ExitCode::from(ended.exit_code)
}

fn workflow_id(environment: &str) -> String {
    format!("deploy-{environment}")
}

async fn run(
    mut cli: Cli,
    matches: &clap::ArgMatches,
    terminal: output::Terminal,
) -> anyhow::Result<Ended> {
    if let Command::Completions { shell } = cli.command {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "deployctl", &mut script);
        let script = String::from_utf8(script)?;
        if !terminal.json {
            print!("{script}");
        }
        return Ok(Ended {
            document: Some(
                serde_json::json!({ "exit_code": 0, "shell": shell.to_string(), "script": script }),
            ),
            ..Default::default()
        });
    }
    let environment = config::environment(cli.config.as_deref(), &cli.environment)?;
    if let Command::Start { version, .. }
    | Command::Rollback {
        to: Some(version), ..
    } = &cli.command
    {
        config::check_version(version)?;
    }
    // Settings that cannot work are refused (exit 2) before any attempt to connect (exit 6).
    cli.temporal
        .apply_profile(|id| deployctl_worker::set_by_user(matches, id))?;
    cli.temporal.connection_options(None)?;
    let client = deployctl_worker::connect(&cli.temporal, Duration::from_secs(5))
        .await
        .map_err(|error| exit::Unreachable(format!("{error:#}")))?;
    let deploys = Deploys {
        environment: environment.name.clone(),
        handle: client.get_workflow_handle::<DeployWorkflow>(workflow_id(&environment.name)),
        // The environment's pool polls its own queue (the shop's workers run deployctl-worker).
        task_queue: environment.deploys_task_queue().to_string(),
        web_ui: format!(
            "{}/namespaces/{}/workflows",
            cli.ui_address.trim_end_matches('/'),
            cli.temporal.namespace
        ),
        client,
        terminal,
    };
    match cli.command {
        Command::Completions { .. } => unreachable!("answered above"),
        Command::Start {
            version,
            options,
            wait,
        } => {
            let request = deploy_request(&cli.compose_file, environment, version, options);
            deploys.start(request, wait).await
        }
        Command::Watch => {
            // Nothing to watch is said at once (exit 2), not retried as a lost connection.
            query(&deploys.handle).await?;
            let message = format!("watching the deploy of {}", environment.name);
            deploys.follow(true, true, message).await
        }
        Command::Status => {
            let status = query(&deploys.handle).await?;
            if !terminal.json {
                print!("{}", output::render(&status));
            }
            Ok(Ended {
                exit_code: exit::of_status(&status),
                document: Some(serde_json::to_value(&status)?),
                ..Default::default()
            })
        }
        Command::Approve { comment, by } => {
            let input = ApproveSignal {
                approved_by: by,
                comment,
            };
            let update = DeployWorkflow::approve;
            let answer = deploys
                .handle
                .execute_update(update, input, update_options());
            deploys.answered(answer.await).await
        }
        Command::Reject { reason, by } => {
            let input = RejectSignal {
                rejected_by: by,
                reason,
            };
            let update = DeployWorkflow::reject;
            let answer = deploys
                .handle
                .execute_update(update, input, update_options());
            deploys.answered(answer.await).await
        }
        Command::Rollback {
            reason,
            to,
            by,
            options,
            wait,
        } => {
            let status = query(&deploys.handle).await?;
            if status.phase == Phase::Baking as i32 && to.is_none() {
                let asked = std::time::Instant::now();
                let input = RollbackRequest {
                    requested_by: by,
                    reason,
                };
                let update = DeployWorkflow::rollback;
                let answer = deploys
                    .handle
                    .execute_update(update, input, update_options())
                    .await;
                let accepted = deploys.answered(answer).await?;
                let elapsed = asked.elapsed().as_millis();
                terminal.say(format!("(accepted in {elapsed} ms)"));
                return deploys.follow(wait, true, accepted.message).await;
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
            terminal.say(format!("rolling back to {version} through a normal deploy"));
            let request = deploy_request(&cli.compose_file, environment, version, options);
            deploys.start(request, wait).await
        }
        Command::Config => deploys.check_environment(&environment.name).await,
        Command::Check => deploys.checklist(&environment.name).await,
        Command::History { limit } => {
            let workflow_id = workflow_id(&environment.name);
            let past =
                history::deploys(&deploys.client, &workflow_id, limit, &deploys.web_ui).await?;
            if !terminal.json {
                print!("{}", history::render(&past));
            }
            let document = serde_json::json!({
                "exit_code": exit::DONE,
                "environment": environment.name,
                "deploys": past,
            });
            Ok(Ended {
                document: Some(document),
                ..Default::default()
            })
        }
        Command::Abort { reason, wait } => {
            let status = query(&deploys.handle).await?;
            if !is_running(status.phase) {
                anyhow::bail!(
                    "the last deploy ({}) is {}: there is nothing to abort",
                    status.version,
                    output::phase_name(status.phase)
                );
            }
            deploys
                .handle
                .cancel(WorkflowCancelOptions::builder().reason(reason).build())
                .await
                .context("asking Temporal to cancel the deploy")?;
            let message =
                "abort requested: the deploy stops and returns the stack to the last good state";
            terminal.say(message);
            deploys.follow(wait, true, message.into()).await
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

/// One environment's deploys, as Temporal holds them, and where their words go.
struct Deploys {
    environment: String,
    client: Client,
    handle: WorkflowHandle<Client, DeployWorkflow>,
    task_queue: String,
    /// The Web UI's workflow list of the namespace.
    web_ui: String,
    terminal: output::Terminal,
}

impl Deploys {
    /// Runs the worker's read-only check of the environment, and prints what it found.
    async fn check_environment(&self, environment: &str) -> anyhow::Result<Ended> {
        let id = format!("check-environment-{environment}");
        let options = WorkflowStartOptions::new(&self.task_queue, id).build();
        let handle = self
            .client
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
        for line in &report.matches {
            self.terminal.say(format!("  ✓ {line}"));
        }
        for line in &report.problems {
            self.terminal.say(format!("  ✗ {line}"));
        }
        let message = match report.problems.len() {
            0 => format!("environment {environment} matches the running stack"),
            count => {
                format!(
                    "environment {environment}: {count} settings do not match the running stack"
                )
            }
        };
        self.terminal.say(&message);
        let exit_code = match report.problems.is_empty() {
            true => exit::DONE,
            false => exit::REFUSED,
        };
        Ok(Ended {
            document: Some(serde_json::to_value(&report)?),
            ..Ended::with_code(exit_code, message)
        })
    }

    /// Runs the monitoring checklist on a worker, and prints one line per item.
    async fn checklist(&self, environment: &str) -> anyhow::Result<Ended> {
        let id = format!("checklist-{environment}");
        let options = WorkflowStartOptions::new(&self.task_queue, id).build();
        let handle = self
            .client
            .start_workflow(ChecklistWorkflow::run, environment.to_string(), options)
            .await
            .context("starting the checklist")?;
        let checklist = handle
            .get_result(Default::default())
            .await
            .context("waiting for the checklist")?;
        for item in &checklist.items {
            let mark = if item.passed { "✓" } else { "✗" };
            self.terminal
                .say(format!("  {mark} {:<14} {}", item.name, item.detail));
        }
        let failed: Vec<&str> = checklist
            .items
            .iter()
            .filter(|item| !item.passed)
            .map(|item| item.name.as_str())
            .collect();
        let (exit_code, message) = match failed.is_empty() {
            true => (exit::DONE, format!("{environment}: every item passed")),
            false => (
                exit::FAILED,
                format!("{environment}: failed: {}", failed.join(", ")),
            ),
        };
        self.terminal.say(&message);
        let mut document = serde_json::to_value(&checklist)?;
        document["exit_code"] = exit_code.into();
        Ok(Ended {
            document: Some(document),
            ..Ended::with_code(exit_code, message)
        })
    }

    /// An Update's answer, or why it was refused: its validator's words, or the deploy ended.
    async fn answered(
        &self,
        answer: Result<deployctl_proto::v1::Accepted, WorkflowUpdateError>,
    ) -> anyhow::Result<Ended> {
        let accepted = match answer {
            Ok(accepted) => accepted,
            Err(WorkflowUpdateError::Failed(failure)) => {
                anyhow::bail!("refused: {}", failure.message)
            }
            Err(other) => {
                // Temporal takes no Update for a workflow that has ended (it answers "not
                // found"); the status says which deploy that was, or that none has run.
                let status = query(&self.handle).await?;
                if !is_running(status.phase) {
                    anyhow::bail!(
                        "refused: the deploy of {} has ended ({}): no approval gate is waiting \
                         and nothing is baking",
                        status.version,
                        output::phase_name(status.phase)
                    );
                }
                return Err(anyhow::Error::new(other).context("sending the update"));
            }
        };
        self.terminal.say(&accepted.message);
        Ok(Ended {
            workflow_id: Some(self.handle.info().workflow_id.clone()),
            ..Ended::with_code(exit::DONE, accepted.message)
        })
    }

    async fn start(&self, request: DeployRequest, wait: bool) -> anyhow::Result<Ended> {
        let environment = request.environment_name.clone();
        let id = workflow_id(&environment);
        let version = request.version.clone();
        // What the Web UI shows beside the run: the environment's last deploy says what is live.
        let live = query(&self.handle)
            .await
            .ok()
            .and_then(|last| output::live_version(&last));
        // What `deployctl history` and the Web UI's list read: the search attributes (once the
        // namespace knows them) and the memo.
        let search_attributes =
            match deployctl_worker::register_search_attributes(&self.client).await {
                Ok(()) => Some(SearchAttributes::new([
                    visibility::DEPLOY_ENV.value_set(environment.clone()),
                    visibility::DEPLOY_VERSION.value_set(version.clone()),
                ])),
                Err(error) => {
                    eprintln!("note: the deploy starts without its search attributes: {error:#}");
                    None
                }
            };
        let mut memo = MemoValues::new();
        memo.insert(visibility::MEMO_REQUESTED_BY, request.requested_by.clone());
        if let Some(live) = &live {
            memo.insert(visibility::MEMO_FROM_VERSION, live.clone());
        }
        let options = WorkflowStartOptions::new(&self.task_queue, id.clone())
            .static_summary(output::summary(&environment, live.as_deref(), &version))
            .static_details(output::details(&request))
            .maybe_search_attributes(search_attributes)
            .memo(memo)
            .build();
        match self
            .client
            .start_workflow(DeployWorkflow::run, request, options)
            .await
        {
            Ok(_) => {}
            Err(WorkflowStartError::AlreadyStarted { .. }) => {
                // Asked again, not reused from above: a start racing this one may have won
                // since, and the refusal must name that deploy (fault row 11).
                let status = query(&self.handle).await.unwrap_or_default();
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
        let message = format!("deploy {version} to {environment} started: workflow {id}");
        let web_ui = format!("{}/{id}", self.web_ui);
        self.terminal.say(&message);
        self.terminal.say(format!("Web UI: {web_ui}"));
        let ended = self.follow(wait, false, message).await?;
        Ok(Ended {
            web_ui: Some(web_ui),
            ..ended
        })
    }

    /// Prints each step as it changes. Without `wait`, stops once preflight has passed (or,
    /// for `already_started`, at once). Ends with the deploy's outcome and its last status.
    async fn follow(
        &self,
        wait: bool,
        already_started: bool,
        message: String,
    ) -> anyhow::Result<Ended> {
        let terminal = self.terminal;
        let mut screen = watch::Screen::new(terminal);
        let mut unreachable_since: Option<std::time::Instant> = None;
        // The workflow's end, long-polled beside the status polls, so the last lines print as
        // soon as the deploy ends rather than at the next poll.
        let ended = self.handle.get_result(WorkflowGetResultOptions::default());
        tokio::pin!(ended);
        let mut end_seen = false;
        loop {
            // Temporal or the worker may restart under a deploy; keep watching through it.
            let status = match query(&self.handle).await {
                Ok(status) => {
                    if unreachable_since.take().is_some() {
                        screen.say("  (reconnected)");
                    }
                    status
                }
                Err(error) => {
                    let since = *unreachable_since.get_or_insert_with(|| {
                        screen.say(format!(
                            "  (lost contact with the deploy: {error:#}; retrying)"
                        ));
                        std::time::Instant::now()
                    });
                    if since.elapsed() > Duration::from_secs(180) {
                        let lost = exit::Unreachable(format!("{error:#}"));
                        return Err(anyhow::Error::new(lost).context("no answer for 180 s"));
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            // Retries are a nicety: a describe that fails leaves them out of this look.
            let retries = match self.handle.describe(Default::default()).await {
                Ok(description) => watch::retries(description.raw()),
                Err(_) => Vec::new(),
            };
            screen.show(&status, &retries, &self.environment);
            let phase = Phase::try_from(status.phase).unwrap_or_default();
            let preflight_done = already_started || exit::preflight_passed(&status);
            let outcome = match phase {
                Phase::Failed if !preflight_done => {
                    Some(format!("refused before any change: {}", status.error))
                }
                Phase::Failed => Some(format!(
                    "the deploy failed at {}: {}",
                    status.failed_step, status.error
                )),
                Phase::Completed | Phase::Rejected | Phase::RolledBack | Phase::Aborted => {
                    let phase = output::phase_name(status.phase);
                    Some(format!("the deploy of {} {phase}", status.version))
                }
                _ if !wait && preflight_done => {
                    if !already_started {
                        screen.say("preflight passed; follow the deploy with `deployctl watch`");
                    }
                    Some(message.clone())
                }
                _ => None,
            };
            if let Some(outcome) = outcome {
                screen.finish(&outcome);
                let exit_code = match phase {
                    Phase::Failed if !preflight_done => exit::REFUSED,
                    _ => exit::of_status(&status),
                };
                if phase == Phase::Failed {
                    eprintln!("error: {outcome}");
                }
                return Ok(Ended {
                    workflow_id: Some(self.handle.info().workflow_id.clone()),
                    status: Some(status),
                    ..Ended::with_code(exit_code, outcome)
                });
            }
            if end_seen {
                tokio::time::sleep(Duration::from_millis(300)).await;
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                    _ = &mut ended => end_seen = true,
                }
            }
        }
    }
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
