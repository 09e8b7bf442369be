//! `deployctl`: start a blue-green deploy, watch it, and approve or reject it at the gate.
//!
//! Every command talks to Temporal only; the deploy itself runs in the worker. Bad input is
//! refused here, before anything starts: an unknown environment, a malformed version, a deploy
//! already running. What only the worker can see (a missing image) fails the workflow's
//! preflight, and `start` waits for preflight so the error still comes back at once.

mod compose;
mod config;
mod deploys;
mod exit;
mod history;
mod output;
mod request;
mod serve;
mod watch;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use deployctl_proto::v1::{ApproveSignal, Phase, RejectSignal, RollbackRequest};
use deployctl_workflows::{DeployWorkflow, push_queue::deploy_id};
use temporalio_client::WorkflowCancelOptions;

use deploys::{Deploys, is_running, previous_version, query, update_options};
use exit::Ended;
use request::{DeployOptions, deploy_request};

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
    /// The environment's push queue (fed by `serve`): the tag it deploys next, the pushes a
    /// newer one superseded, the deploys it started and what it waits for.
    Queue,
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
    /// Listen for pushes of new image tags (from a registry or CI) and deploy each one: a
    /// POST to /push of `{"tag": "v2.0.0"}`, signed with HMAC-SHA256 under a shared secret.
    /// Pushes that arrive during a deploy queue up, and only the newest is deployed next.
    Serve {
        /// Where to listen. Keep it behind a TLS proxy if it faces a network.
        #[arg(
            long,
            env = "DEPLOYCTL_SERVE_ADDRESS",
            default_value = "127.0.0.1:8787"
        )]
        listen: std::net::SocketAddr,
        /// A file holding the shared secret (its first line); or set DEPLOYCTL_WEBHOOK_SECRET.
        #[arg(long, env = "DEPLOYCTL_WEBHOOK_SECRET_FILE")]
        secret_file: Option<PathBuf>,
        /// How far a delivery's timestamp may be from now, in seconds; a delivery id is
        /// remembered for as long, so its replay is refused.
        #[arg(long, default_value_t = 300)]
        window: u64,
        /// The largest body taken, in bytes (more: 413).
        #[arg(long, default_value_t = 64 * 1024)]
        max_body: usize,
        #[command(flatten)]
        options: DeployOptions,
    },
    /// Print the shell completion script, e.g. `deployctl completions bash >
    /// /etc/bash_completion.d/deployctl`.
    Completions { shell: clap_complete::Shell },
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
    let secret = match &cli.command {
        Command::Serve { secret_file, .. } => webhook_secret(secret_file.as_deref())?,
        _ => Vec::new(),
    };
    // Settings that cannot work are refused (exit 2) before any attempt to connect (exit 6).
    cli.temporal
        .apply_profile(|id| deployctl_worker::set_by_user(matches, id))?;
    cli.temporal.connection_options(None)?;
    let client = deployctl_worker::connect(&cli.temporal, Duration::from_secs(5))
        .await
        .map_err(|error| exit::Unreachable(format!("{error:#}")))?;
    let deploys = Deploys {
        environment: environment.name.clone(),
        handle: client.get_workflow_handle::<DeployWorkflow>(deploy_id(&environment.name)),
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
        Command::Serve {
            listen,
            window,
            max_body,
            options,
            ..
        } => {
            let compose_file = cli.compose_file.clone();
            let known = environment.clone();
            let server = serve::Server {
                verifier: serve::Verifier::new(secret, Duration::from_secs(window)),
                client: deploys.client.clone(),
                task_queue: deploys.task_queue.clone(),
                web_ui: deploys.web_ui.clone(),
                terminal,
                request: Box::new(move |tag, requested_by| {
                    let mut request =
                        deploy_request(&compose_file, known.clone(), tag, options.clone());
                    request.requested_by = requested_by;
                    request
                }),
                environment,
            };
            serve::run(server, listen, max_body).await?;
            Ok(Ended::with_code(exit::DONE, "stopped"))
        }
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
        Command::Queue => {
            let queue = deploys.push_queue().await?;
            let message = match &queue {
                Some(queue) => output::render_queue(queue),
                None => format!("no push has reached {}'s queue yet", environment.name),
            };
            terminal.say(message.trim_end());
            let document = serde_json::json!({
                "exit_code": exit::DONE,
                "environment": environment.name,
                "queue": queue,
            });
            Ok(Ended {
                document: Some(document),
                ..Default::default()
            })
        }
        Command::History { limit } => {
            let workflow_id = deploy_id(&environment.name);
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

/// The shared secret of `serve`: the file's first line, or DEPLOYCTL_WEBHOOK_SECRET. Refused
/// when missing or short, before anything listens.
fn webhook_secret(file: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    let secret = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the webhook secret from {}", path.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        None => std::env::var("DEPLOYCTL_WEBHOOK_SECRET").unwrap_or_default(),
    };
    anyhow::ensure!(
        secret.len() >= 16,
        "serve needs a shared secret of at least 16 bytes: --secret-file FILE or \
         DEPLOYCTL_WEBHOOK_SECRET (e.g. `openssl rand -hex 32`)"
    );
    Ok(secret.into_bytes())
}
