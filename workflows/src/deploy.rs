//! DeployWorkflow: the seed's manual blue-green deploy as one durable Temporal workflow.
//!
//! `run` reads like the runbook: one short function per step, in order. Each step marks itself
//! in the status (what the `status` query and the Web UI show) and records what it changed, so
//! that a later rollback can undo it. All effects live in the activities; this file only
//! decides, waits and records, which keeps it deterministic.

use std::{future::Future, time::Duration};

use chrono::{DateTime, SecondsFormat, Utc};
use deployctl_activities::{
    compose::{ComposeActivities, RecordVersions},
    database::{AwaitMigrations, DatabaseActivities},
    docker::{
        AwaitHealthy, DockerActivities, DrainWorkers, ReplaceContainer, ServiceRef, StartWorkers,
    },
    haproxy::{HaproxyActivities, SwitchTraffic},
    health::{CheckHealth, HealthActivities},
};
use deployctl_proto::v1::{
    ApproveSignal, Change, Colour, ContainerReplaced, ContainerStopped, DeployRequest,
    DeployStatus, Gate, Phase, RejectSignal, Step, StepState, TrafficSwitched, WorkersReplaced,
    change,
};
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, ApplicationFailure, SyncWorkflowContext,
    WorkflowCancellationToken, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::plan::{self, *};

/// How long the slow parts of the stack get before a step gives up.
const CONTAINER_HEALTH_TIMEOUT: Duration = Duration::from_secs(180);
const MIGRATIONS_TIMEOUT: Duration = Duration::from_secs(300);
const SWITCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Graceful stop: SIGTERM, then SIGKILL after this. Cron finishes its job, workers drain.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[workflow]
#[derive(Default)]
pub struct DeployWorkflow {
    status: DeployStatus,
    environment: deployctl_proto::v1::Environment,
}

impl DeployWorkflow {
    /// The gate has its answer: approved or rejected, whichever came first.
    fn decided(&self) -> bool {
        self.status.approval.is_some() || self.status.rejection.is_some()
    }
}

/// What preflight learnt, which every later step uses.
#[derive(Clone)]
struct Plan {
    request: DeployRequest,
    image: String,
    migrations: u32,
    live: Option<Colour>,
    target: Colour,
}

impl Plan {
    fn environment(&self) -> &deployctl_proto::v1::Environment {
        self.request
            .environment
            .as_ref()
            .expect("checked in preflight")
    }

    /// The colour that is not the target: the one live now, or blue on a first deploy.
    fn old(&self) -> Colour {
        match self.target {
            Colour::Green => Colour::Blue,
            _ => Colour::Green,
        }
    }

    fn colour_url(&self, colour: Colour) -> String {
        let environment = self.environment();
        format!(
            "http://{}:{}",
            names(environment, colour).container,
            environment.api_port
        )
    }
}

/// Why a step stopped the deploy.
enum Stop {
    Failed(String),
    Rejected,
}

impl From<ActivityExecutionError> for Stop {
    fn from(error: ActivityExecutionError) -> Self {
        Stop::Failed(describe(&error))
    }
}

type StepResult<T> = Result<T, Stop>;

#[workflow_methods]
impl DeployWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        request: DeployRequest,
    ) -> WorkflowResult<DeployStatus> {
        begin(ctx, &request);
        let ctx = &*ctx;
        let outcome = Self::runbook(ctx, &request).await;
        finish(ctx, outcome).await
    }

    /// The deploy, step by step, as the seed's runbook does it by hand.
    async fn runbook(ctx: &WorkflowContext<Self>, request: &DeployRequest) -> StepResult<()> {
        let plan = preflight(ctx, request).await?;
        start_idle_colour(ctx, &plan).await?;
        await_migrations(ctx, &plan).await?;
        let address = await_health(ctx, &plan).await?;
        approval(ctx, &plan).await?;
        switch_traffic(ctx, &plan, address).await?;
        roll_cron(ctx, &plan).await?;
        roll_workers(ctx, &plan).await?;
        update_old_colour(ctx, &plan).await?;
        record_versions(ctx, &plan).await
    }

    /// Lets a deploy held at the approval gate switch traffic.
    #[signal]
    pub fn approve(&mut self, _ctx: &mut SyncWorkflowContext<Self>, signal: ApproveSignal) {
        if !self.decided() {
            self.status.approval = Some(signal);
        }
    }

    /// Stops a deploy held at the approval gate; traffic stays on the live colour.
    #[signal]
    pub fn reject(&mut self, _ctx: &mut SyncWorkflowContext<Self>, signal: RejectSignal) {
        if !self.decided() {
            self.status.rejection = Some(signal);
        }
    }

    /// The phase, every step with its state and times, and the gate being waited on.
    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> DeployStatus {
        self.status.clone()
    }
}

// ---- The steps, in runbook order ------------------------------------------------------------

/// Checks everything it can before anything changes: the image exists, HAProxy names both
/// colours and exactly one (or none) is live, and both colour containers exist.
async fn preflight(
    ctx: &WorkflowContext<DeployWorkflow>,
    request: &DeployRequest,
) -> StepResult<Plan> {
    step(
        ctx,
        PREFLIGHT,
        format!("checking {}", request.version),
        async {
            let Some(environment) = request.environment.as_ref() else {
                return Err(Stop::Failed("the request names no environment".into()));
            };
            let image = plan::image(environment, &request.version);
            let info = ctx
                .execute_activity(
                    DockerActivities::inspect_image,
                    image.clone(),
                    quick(format!("find image {image}")),
                )
                .await?;
            let servers = ctx
                .execute_activity(
                    HaproxyActivities::read_backend,
                    environment.haproxy_backend.clone(),
                    quick(format!(
                        "read HAProxy backend {}",
                        environment.haproxy_backend
                    )),
                )
                .await?;
            let (live, target) =
                choose_colours(environment, &servers).map_err(|e| Stop::Failed(e.to_string()))?;
            for colour in [Colour::Blue, Colour::Green] {
                let container = names(environment, colour).container.to_string();
                let found = ctx
                    .execute_activity(
                        DockerActivities::inspect_container,
                        container.clone(),
                        quick(format!("inspect {container}")),
                    )
                    .await?;
                let Some(found) = found else {
                    return Err(Stop::Failed(format!(
                        "container {container} does not exist: bring the stack up first"
                    )));
                };
                if Some(colour) == live && found.image_id == info.id {
                    return Err(Stop::Failed(format!(
                        "{} is already live on {}: nothing to deploy",
                        request.version,
                        colour_name(colour)
                    )));
                }
            }
            ctx.state_mut(|s| {
                s.status.image = image.clone();
                s.status.live_colour = live.unwrap_or_default() as i32;
                s.status.target_colour = target as i32;
            });
            Ok(Plan {
                request: request.clone(),
                image,
                migrations: info.migrations,
                live,
                target,
            })
        },
    )
    .await
}

/// Runbook 1: start the idle colour on the new image.
async fn start_idle_colour(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) -> StepResult<()> {
    let container = names(plan.environment(), plan.target).container.to_string();
    let detail = format!("{} on {}", colour_name(plan.target), plan.image);
    step(ctx, START_IDLE_COLOUR, detail.clone(), async {
        replace_container(
            ctx,
            START_IDLE_COLOUR,
            &container,
            plan,
            format!("start {detail}"),
        )
        .await
    })
    .await
}

/// Runbook 2a: the new colour runs its migrations as it starts; wait until all are finished.
async fn await_migrations(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) -> StepResult<()> {
    let detail = format!("{} migrations in _prisma_migrations", plan.migrations);
    step(ctx, AWAIT_MIGRATIONS, detail.clone(), async {
        ctx.execute_activity(
            DatabaseActivities::await_migrations,
            AwaitMigrations {
                expected: plan.migrations,
                timeout_seconds: MIGRATIONS_TIMEOUT.as_secs(),
            },
            waiting(MIGRATIONS_TIMEOUT, format!("await {detail}")),
        )
        .await?;
        Ok(())
    })
    .await
}

/// Runbook 2b: Docker says the new colour is healthy, and it serves the new version itself.
/// Returns its address, which HAProxy gets before it is enabled.
async fn await_health(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) -> StepResult<String> {
    let colour = colour_name(plan.target);
    step(
        ctx,
        AWAIT_HEALTH,
        format!("{colour} healthy on {}", plan.request.version),
        async {
            let address = await_container_healthy(ctx, plan, plan.target).await?;
            await_http(
                ctx,
                plan.colour_url(plan.target),
                plan,
                3,
                format!("{colour} answers /health"),
            )
            .await?;
            Ok(address)
        },
    )
    .await
}

/// The optional gate before traffic moves: waits for `approve` or `reject`.
async fn approval(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) -> StepResult<()> {
    if !plan.request.approve_before_switch {
        mark(ctx, APPROVAL, StepState::Skipped, "no gate requested");
        return Ok(());
    }
    let target = colour_name(plan.target);
    step(ctx, APPROVAL, format!("waiting: {target} is ready, traffic still on the live colour"), async {
        ctx.state_mut(|s| {
            s.status.phase = Phase::AwaitingApproval as i32;
            s.status.gate = Some(Gate {
                name: APPROVAL.into(),
                waiting_since: now(ctx),
            });
        });
        ctx.set_current_details(format!(
            "**Waiting for approval** to switch traffic to {target}. Send the `approve` or `reject` signal, or run `deployctl approve`."
        ));
        ctx.wait_condition(|s| s.decided())
            .await
            .map_err(|_| Stop::Failed("cancelled while waiting for approval".into()))?;
        ctx.state_mut(|s| {
            s.status.gate = None;
            s.status.phase = Phase::Running as i32;
        });
        if ctx.state(|s| s.status.rejection.is_some()) {
            return Err(Stop::Rejected);
        }
        Ok(())
    })
    .await
}

/// Runbook 3: move HAProxy's traffic to the new colour, then check it through the frontend.
async fn switch_traffic(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
    address: String,
) -> StepResult<()> {
    let environment = plan.environment();
    let from = plan.live;
    let detail = format!(
        "{} → {}",
        colour_name(from.unwrap_or_default()),
        colour_name(plan.target)
    );
    step(ctx, SWITCH_TRAFFIC, detail.clone(), async {
        ctx.execute_activity(
            HaproxyActivities::switch_traffic,
            SwitchTraffic {
                backend: environment.haproxy_backend.clone(),
                from_server: from.map(|colour| names(environment, colour).server.to_string()),
                to_server: names(environment, plan.target).server.to_string(),
                to_address: Some(address).filter(|a| !a.is_empty()),
                to_port: environment.api_port as u16,
                timeout_seconds: SWITCH_TIMEOUT.as_secs(),
            },
            waiting(SWITCH_TIMEOUT * 2, format!("switch traffic {detail}")),
        )
        .await?;
        record(
            ctx,
            SWITCH_TRAFFIC,
            change::Kind::TrafficSwitched(TrafficSwitched {
                from: from.unwrap_or_default() as i32,
                to: plan.target as i32,
            }),
        );
        let frontend = environment.frontend_url.clone();
        await_http(
            ctx,
            frontend,
            plan,
            5,
            "the frontend serves the new version".into(),
        )
        .await
    })
    .await
}

/// Runbook 4a: the cron must never run twice, so the old one stops before the new one starts.
async fn roll_cron(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) -> StepResult<()> {
    let cron = plan.environment().cron_container.clone();
    step(
        ctx,
        ROLL_CRON,
        format!("{cron}: stop, then start on {}", plan.image),
        async {
            replace_container(
                ctx,
                ROLL_CRON,
                &cron,
                plan,
                format!("stop and restart {cron} on {}", plan.image),
            )
            .await?;
            ctx.execute_activity(
                DockerActivities::await_healthy,
                AwaitHealthy {
                    container: cron.clone(),
                    timeout_seconds: CONTAINER_HEALTH_TIMEOUT.as_secs(),
                },
                waiting(CONTAINER_HEALTH_TIMEOUT, format!("await {cron} healthy")),
            )
            .await?;
            Ok(())
        },
    )
    .await
}

/// Runbook 4b: start the new workers first, then drain the old ones (SIGTERM lets in-flight
/// tasks finish), so the pool never empties.
async fn roll_workers(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) -> StepResult<()> {
    let environment = plan.environment();
    let service = ServiceRef {
        project: environment.compose_project.clone(),
        service: environment.worker_service.clone(),
    };
    step(
        ctx,
        ROLL_WORKERS,
        format!("{}: start new, then drain old", service.service),
        async {
            let running = ctx
                .execute_activity(
                    DockerActivities::list_service,
                    service.clone(),
                    quick(format!("list {} containers", service.service)),
                )
                .await?;
            let count = match environment.worker_replicas {
                0 => running.iter().filter(|w| w.running).count().max(1) as u32,
                replicas => replicas,
            };
            let previous_image = running.first().map(|w| w.image.clone()).unwrap_or_default();
            let started = ctx
                .execute_activity(
                    DockerActivities::start_workers,
                    StartWorkers {
                        service: service.clone(),
                        image: plan.image.clone(),
                        count,
                        timeout_seconds: CONTAINER_HEALTH_TIMEOUT.as_secs(),
                        config_hashes: plan.request.compose_config_hashes.clone(),
                    },
                    waiting(
                        CONTAINER_HEALTH_TIMEOUT,
                        format!("start {count} workers on {}", plan.image),
                    ),
                )
                .await?;
            let removed = ctx
                .execute_activity(
                    DockerActivities::drain_workers,
                    DrainWorkers {
                        service: service.clone(),
                        keep_image: plan.image.clone(),
                        stop_timeout_seconds: STOP_TIMEOUT.as_secs(),
                    },
                    draining(format!("drain the workers not on {}", plan.image)),
                )
                .await?;
            record(
                ctx,
                ROLL_WORKERS,
                change::Kind::WorkersReplaced(WorkersReplaced {
                    removed,
                    started,
                    previous_image,
                    new_image: plan.image.clone(),
                }),
            );
            Ok(())
        },
    )
    .await
}

/// Runbook 5: bring the old colour to the new version too; it stays out of rotation, ready
/// to take the next deploy.
async fn update_old_colour(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) -> StepResult<()> {
    let old = plan.old();
    let container = names(plan.environment(), old).container.to_string();
    let detail = format!("{} to {}", colour_name(old), plan.image);
    step(ctx, UPDATE_OLD_COLOUR, detail.clone(), async {
        replace_container(
            ctx,
            UPDATE_OLD_COLOUR,
            &container,
            plan,
            format!("update {detail}"),
        )
        .await?;
        await_container_healthy(ctx, plan, old).await?;
        await_http(
            ctx,
            plan.colour_url(old),
            plan,
            1,
            format!("{} answers /health", colour_name(old)),
        )
        .await
    })
    .await
}

/// Writes the deployed image into Compose's env file, so `docker compose up -d` keeps it.
async fn record_versions(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) -> StepResult<()> {
    let variables = plan.environment().image_variables.clone();
    let detail = format!("{} = {}", variables.join(", "), plan.image);
    let written = step(ctx, RECORD_VERSIONS, detail, async {
        Ok(ctx
            .execute_activity(
                ComposeActivities::record_versions,
                RecordVersions {
                    variables: variables.clone(),
                    image: plan.image.clone(),
                },
                quick(format!("record {} in the Compose env file", plan.image)),
            )
            .await?)
    })
    .await?;
    if written.is_empty() {
        mark(
            ctx,
            RECORD_VERSIONS,
            StepState::Skipped,
            "this worker keeps no Compose env file",
        );
    }
    Ok(())
}

// ---- Shared moves ---------------------------------------------------------------------------

async fn replace_container(
    ctx: &WorkflowContext<DeployWorkflow>,
    step_name: &str,
    container: &str,
    plan: &Plan,
    summary: String,
) -> StepResult<()> {
    let previous_image = ctx
        .execute_activity(
            DockerActivities::replace_container,
            ReplaceContainer {
                container: container.to_string(),
                image: plan.image.clone(),
                stop_timeout_seconds: STOP_TIMEOUT.as_secs(),
                config_hashes: plan.request.compose_config_hashes.clone(),
            },
            draining(summary),
        )
        .await?;
    record(
        ctx,
        step_name,
        change::Kind::ContainerReplaced(ContainerReplaced {
            container: container.to_string(),
            previous_image,
            new_image: plan.image.clone(),
        }),
    );
    Ok(())
}

async fn await_container_healthy(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
    colour: Colour,
) -> StepResult<String> {
    let container = names(plan.environment(), colour).container.to_string();
    let info = ctx
        .execute_activity(
            DockerActivities::await_healthy,
            AwaitHealthy {
                container: container.clone(),
                timeout_seconds: CONTAINER_HEALTH_TIMEOUT.as_secs(),
            },
            waiting(
                CONTAINER_HEALTH_TIMEOUT,
                format!("await {container} healthy"),
            ),
        )
        .await?;
    Ok(info.address)
}

async fn await_http(
    ctx: &WorkflowContext<DeployWorkflow>,
    base_url: String,
    plan: &Plan,
    answers: u32,
    summary: String,
) -> StepResult<()> {
    ctx.execute_activity(
        HealthActivities::await_http_health,
        CheckHealth {
            base_url,
            version: plan.request.version.clone(),
            answers,
            timeout_seconds: CONTAINER_HEALTH_TIMEOUT.as_secs(),
        },
        waiting(CONTAINER_HEALTH_TIMEOUT, summary),
    )
    .await?;
    Ok(())
}

// ---- Status bookkeeping ---------------------------------------------------------------------

fn begin(ctx: &WorkflowContext<DeployWorkflow>, request: &DeployRequest) {
    ctx.state_mut(|s| {
        s.environment = request.environment.clone().unwrap_or_default();
        s.status = DeployStatus {
            environment: request
                .environment
                .as_ref()
                .map(|e| e.name.clone())
                .unwrap_or_default(),
            version: request.version.clone(),
            phase: Phase::Running as i32,
            steps: STEPS
                .iter()
                .map(|name| Step {
                    name: name.to_string(),
                    state: StepState::Pending as i32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
    });
}

/// Runs one step: marks it running, then done or failed, with workflow timestamps.
async fn step<T>(
    ctx: &WorkflowContext<DeployWorkflow>,
    name: &str,
    detail: String,
    work: impl Future<Output = StepResult<T>>,
) -> StepResult<T> {
    mark(ctx, name, StepState::Running, &detail);
    ctx.set_current_details(format!("**{name}**: {detail}"));
    let result = work.await;
    match &result {
        Ok(_) => mark(ctx, name, StepState::Done, &detail),
        Err(Stop::Rejected) => mark(ctx, name, StepState::Failed, "rejected"),
        Err(Stop::Failed(error)) => mark(ctx, name, StepState::Failed, error),
    }
    result
}

fn mark(ctx: &WorkflowContext<DeployWorkflow>, name: &str, state: StepState, detail: &str) {
    let time = now(ctx);
    ctx.state_mut(|s| {
        let Some(step) = s.status.steps.iter_mut().find(|step| step.name == name) else {
            return;
        };
        step.state = state as i32;
        step.detail = detail.to_string();
        match state {
            StepState::Running => step.started_at = time,
            StepState::Skipped => {
                step.started_at = time.clone();
                step.finished_at = time;
            }
            _ => step.finished_at = time,
        }
    });
}

fn record(ctx: &WorkflowContext<DeployWorkflow>, step: &str, kind: change::Kind) {
    ctx.state_mut(|s| {
        s.status.changes.push(Change {
            step: step.to_string(),
            kind: Some(kind),
        })
    });
}

/// Ends the deploy. A failure before the switch stops the new colour, so nothing half-done
/// stays up; traffic never left the live colour. After the switch, traffic is on the new,
/// healthy colour, and the failed step says what is left.
async fn finish(
    ctx: &WorkflowContext<DeployWorkflow>,
    outcome: StepResult<()>,
) -> WorkflowResult<DeployStatus> {
    match outcome {
        Ok(()) => {
            ctx.state_mut(|s| s.status.phase = Phase::Completed as i32);
            ctx.set_current_details("**Completed**");
        }
        Err(Stop::Rejected) => {
            stop_new_colour(ctx).await;
            let reason = ctx.state(|s| s.status.rejection.clone().unwrap_or_default());
            ctx.state_mut(|s| s.status.phase = Phase::Rejected as i32);
            ctx.set_current_details(format!(
                "**Rejected** by {}: {}. Traffic stayed on the live colour.",
                reason.rejected_by, reason.reason
            ));
        }
        Err(Stop::Failed(error)) => {
            if !target_takes_traffic(ctx).await {
                stop_new_colour(ctx).await;
            }
            ctx.state_mut(|s| {
                s.status.phase = Phase::Failed as i32;
                s.status.error = error.clone();
            });
            ctx.set_current_details(format!("**Failed**: {error}"));
            return Err(ApplicationFailure::builder(error)
                .type_name("DeployFailed".to_string())
                .non_retryable(true)
                .build()
                .into());
        }
    }
    Ok(ctx.state(|s| s.status.clone()))
}

/// Whether HAProxy sends traffic to the target colour. Asked, not assumed: a switch can fail
/// after it moved traffic. When HAProxy cannot be read, the answer is "yes", so the new
/// colour is never stopped blind.
async fn target_takes_traffic(ctx: &WorkflowContext<DeployWorkflow>) -> bool {
    let (environment, target) = ctx.state(|s| (s.environment.clone(), s.status.target_colour));
    let Ok(target) = Colour::try_from(target) else {
        return false;
    };
    if target == Colour::Unspecified {
        return false;
    }
    let mut options = quick(format!(
        "ask HAProxy whether {} takes traffic",
        colour_name(target)
    ));
    options.cancellation_token = Some(WorkflowCancellationToken::new());
    let servers = ctx
        .execute_activity(
            HaproxyActivities::read_backend,
            environment.haproxy_backend.clone(),
            options,
        )
        .await;
    match servers {
        Ok(servers) => servers
            .iter()
            .any(|s| s.name == names(&environment, target).server && s.carries_traffic),
        Err(_) => true,
    }
}

/// Stops the target colour if this deploy replaced it, whatever cancelled the workflow.
async fn stop_new_colour(ctx: &WorkflowContext<DeployWorkflow>) {
    let started = ctx.state(|s| {
        s.status.changes.iter().find_map(|c| match &c.kind {
            Some(change::Kind::ContainerReplaced(replaced)) if c.step == START_IDLE_COLOUR => {
                Some(replaced.container.clone())
            }
            _ => None,
        })
    });
    let Some(container) = started else { return };
    // Its own cancellation scope: this cleanup must run even when the workflow is cancelled.
    let mut options = draining(format!(
        "stop {container}: traffic stays on the live colour"
    ));
    options.cancellation_token = Some(WorkflowCancellationToken::new());
    let stopped = ctx
        .execute_activity(
            DockerActivities::stop_container,
            ReplaceContainer {
                container: container.clone(),
                image: String::new(),
                stop_timeout_seconds: STOP_TIMEOUT.as_secs(),
                config_hashes: Default::default(),
            },
            options,
        )
        .await;
    if stopped.is_ok() {
        record(
            ctx,
            "stop new colour",
            change::Kind::ContainerStopped(ContainerStopped { container }),
        );
    }
}

fn now(ctx: &WorkflowContext<DeployWorkflow>) -> String {
    ctx.workflow_time()
        .map(|time| DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The innermost failure message: the activity's own words, not the wrapper's.
fn describe(error: &ActivityExecutionError) -> String {
    let Some(mut failure) = error.failure() else {
        return error.to_string();
    };
    while let Some(cause) = failure.cause.as_deref() {
        failure = cause;
    }
    failure.message.clone()
}

// ---- Activity options: each kind of activity gets its own timeouts and retries ---------------

fn retries(maximum_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(20))
        .maximum_attempts(maximum_attempts)
        .build()
}

/// A read: quick, retried a few times.
fn quick(summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retries(5))
        .summary(summary)
        .build()
}

/// A wait that polls and heartbeats.
fn waiting(timeout: Duration, summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(timeout + Duration::from_secs(60))
        .heartbeat_timeout(Duration::from_secs(30))
        .retry_policy(retries(3))
        .summary(summary)
        .build()
}

/// A change that may wait for a graceful stop.
fn draining(summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(STOP_TIMEOUT * 4 + Duration::from_secs(60))
        .heartbeat_timeout(STOP_TIMEOUT * 2)
        .retry_policy(retries(5))
        .summary(summary)
        .build()
}
