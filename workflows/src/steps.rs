//! The runbook's steps, in order. Each one is a short function that marks itself in the
//! status, calls its activities and records what it changed. All effects live in the
//! activities; this file only decides, waits and records, which keeps it deterministic.

use std::time::Duration;

use deployctl_activities::{
    compose::{ComposeActivities, RecordVersions},
    database::{AwaitMigrations, DatabaseActivities},
    docker::{AwaitHealthy, DockerActivities, ListMigrations, ReplaceContainer},
    haproxy::{HaproxyActivities, ServerCounters, ServerRef, SwitchTraffic},
    health::{CheckHealth, HealthActivities, HealthEndpoints},
};
use deployctl_proto::v1::{
    Colour, ContainerReplaced, Environment, Gate, GateExpiry, Phase, StepState, TrafficSwitched,
    change,
};
use temporalio_sdk::{TimerOptions, WorkflowContext};

pub(crate) use crate::preflight::{Plan, preflight};
use crate::{
    DeployWorkflow,
    notify::{self, notify},
    options::*,
    plan::{self, *},
    status::{StepResult, Stop, abort_wins, mark, now, record, step},
    workers::move_workers,
};

/// From this release on the gate awaits the image's migrations by name (a patch, as above).
const MIGRATIONS_BY_NAME: &str = "migrations-by-name";

/// Runbook 1: start the idle colour on the new image.
pub(crate) async fn start_idle_colour(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
) -> StepResult<()> {
    let container = names(&plan.environment, plan.target).container.to_string();
    let detail = format!("{} on {}", colour_name(plan.target), plan.image);
    step(ctx, START_IDLE_COLOUR, detail.clone(), async {
        replace_container(
            ctx,
            START_IDLE_COLOUR,
            &container,
            &plan.image,
            plan,
            Duration::ZERO,
            format!("start {detail}"),
        )
        .await?;
        record_version(
            ctx,
            colour_variable(&plan.environment, plan.target),
            &plan.image,
        )
        .await
    })
    .await
}

/// Runbook 2a: the new colour runs its migrations as it starts; wait until every migration its
/// image carries has finished: each by name (read from the image's migrations folder), and at
/// least as many as its `deployctl.migrations` label declares, if it has one.
pub(crate) async fn await_migrations(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
) -> StepResult<()> {
    let detail = format!(
        "{}'s migrations in _prisma_migrations",
        plan.request.version
    );
    step(ctx, AWAIT_MIGRATIONS, detail, async {
        let expected_names = migrations_of_the_new_colour(ctx, plan).await?;
        let count = plan.migrations.max(expected_names.len() as u32);
        let progress = ctx
            .execute_activity(
                DatabaseActivities::await_migrations,
                AwaitMigrations {
                    expected: plan.migrations,
                    timeout_seconds: MIGRATIONS_TIMEOUT.as_secs(),
                    expected_names: expected_names.clone(),
                },
                waiting(
                    MIGRATIONS_TIMEOUT,
                    format!("await {count} migrations in _prisma_migrations"),
                ),
            )
            .await?;
        let unknown = progress.unknown_to(&expected_names);
        if !unknown.is_empty() {
            ctx.state_mut(|s| {
                s.status.notices.push(format!(
                    "_prisma_migrations holds {} that {} does not carry: the schema is ahead of \
                     the image, which expand/contract allows",
                    unknown.join(", "),
                    plan.image
                ))
            });
        }
        Ok(())
    })
    .await
}

/// The migrations the new colour's image carries, by folder name, read through Docker from
/// the environment's migrations path. (Deploys started before this release went by the
/// label alone, and replay so.)
async fn migrations_of_the_new_colour(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
) -> StepResult<Vec<String>> {
    if !ctx.patched(MIGRATIONS_BY_NAME) {
        return Ok(Vec::new());
    }
    let path = plan::migrations_path(&plan.environment).to_string();
    let container = names(&plan.environment, plan.target).container.to_string();
    Ok(ctx
        .execute_activity(
            DockerActivities::list_migrations,
            ListMigrations {
                container,
                path: path.clone(),
            },
            quick(format!("list the migrations in {path}")),
        )
        .await?)
}

/// Runbook 2b: Docker says the new colour is healthy, and it serves the new version itself.
/// Returns its address, which HAProxy gets before it is enabled.
pub(crate) async fn await_health(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
) -> StepResult<String> {
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

/// The optional gate before traffic moves: waits for `approve` or `reject`, up to its deadline.
pub(crate) async fn approval(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) -> StepResult<()> {
    let request = &plan.request;
    if !request.approve_before_switch {
        mark(ctx, APPROVAL, StepState::Skipped, "no gate requested");
        return Ok(());
    }
    let target = colour_name(plan.target);
    let timeout = Duration::from_secs(request.approval_timeout_seconds as u64);
    let expiry = match GateExpiry::try_from(request.approval_expiry).unwrap_or_default() {
        GateExpiry::Proceed => GateExpiry::Proceed,
        _ => GateExpiry::Reject,
    };
    let detail = format!("waiting: {target} is ready, traffic still on the live colour");
    step(ctx, APPROVAL, detail, async {
        let deadline = if timeout.is_zero() {
            String::new()
        } else {
            later(ctx, timeout)
        };
        ctx.state_mut(|s| {
            s.status.phase = Phase::AwaitingApproval as i32;
            s.status.gate = Some(Gate {
                name: APPROVAL.into(),
                waiting_since: now(ctx),
                deadline: deadline.clone(),
                expiry: expiry as i32,
            });
        });
        ctx.set_current_details(format!(
            "**Waiting for approval** to switch traffic to {target}{}. Run `deployctl approve` or \
             `deployctl reject --reason ...`, or send the `approve` signal with \
             `{{\"approved_by\": \"you\"}}`.",
            if deadline.is_empty() {
                String::new()
            } else {
                format!(" until {deadline}")
            }
        ));
        let until = match deadline.as_str() {
            "" => "no deadline".to_string(),
            deadline => format!("until {deadline}, then {}", expiry_name(expiry)),
        };
        let commands = "`deployctl approve` or `deployctl reject --reason ...`";
        let said = format!("{target} is ready; {commands} ({until})");
        notify(ctx, notify::WAITING_FOR_APPROVAL, said).await;
        wait_or_timeout(ctx, timeout, "approval deadline", |s| s.decided()).await?;
        let answered = ctx.state(|s| s.decided());
        ctx.state_mut(|s| {
            s.status.gate = None;
            s.status.phase = Phase::Running as i32;
        });
        if let Some(rejection) = ctx.state(|s| s.status.rejection.clone()) {
            return Err(Stop::Rejected(format!(
                "by {}: {}",
                rejection.rejected_by, rejection.reason
            )));
        }
        if !answered {
            if expiry == GateExpiry::Reject {
                return Err(Stop::Rejected(format!(
                    "nobody answered the gate within {}s, and its expiry policy is reject",
                    timeout.as_secs()
                )));
            }
            mark(
                ctx,
                APPROVAL,
                StepState::Running,
                "deadline passed: proceeding, as configured",
            );
        }
        Ok(())
    })
    .await?;
    // Who let the deploy through, where `status`, `watch` and the step list show it.
    if let Some(approval) = ctx.state(|s| s.status.approval.clone()) {
        let said = match approval.comment.as_str() {
            "" => format!("approved by {}", approval.approved_by),
            comment => format!("approved by {}: {comment}", approval.approved_by),
        };
        mark(ctx, APPROVAL, StepState::Done, &said);
    }
    Ok(())
}

fn expiry_name(expiry: GateExpiry) -> &'static str {
    match expiry {
        GateExpiry::Proceed => "proceed",
        _ => "reject",
    }
}

/// Runbook 3: move HAProxy's traffic to the new colour, then check it through the frontend.
/// The old colour stays warm (drain: checked, no new requests) for the bake.
pub(crate) async fn switch_traffic(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
    address: String,
) -> StepResult<()> {
    let from = plan.live;
    let detail = format!(
        "{} → {}",
        colour_name(from.unwrap_or_default()),
        colour_name(plan.target)
    );
    step(ctx, SWITCH_TRAFFIC, detail.clone(), async {
        switch(
            ctx,
            plan,
            from,
            plan.target,
            Some(address),
            true,
            format!("switch traffic {detail}"),
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
        await_http(
            ctx,
            plan.environment.frontend_url.clone(),
            plan,
            5,
            "the frontend serves the new version".into(),
        )
        .await
    })
    .await
}

/// Runbook 4: the cron and the workers. Neither waits on the other, so they roll side by side;
/// the cron's image is recorded once both have rolled (if either did not, compensation records
/// the image it puts back). Deploys begun before that release rolled them in turn, and replay
/// so.
pub(crate) async fn roll_cron_and_workers(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
) -> StepResult<()> {
    if !plan.side_by_side {
        roll_cron(ctx, plan).await?;
        return roll_workers(ctx, plan).await;
    }
    let (cron, workers) = futures::join!(roll_cron(ctx, plan), roll_workers(ctx, plan));
    cron?;
    workers?;
    let recorded = record_version(ctx, &plan.environment.cron_image_variable, &plan.image).await;
    abort_wins(ctx, recorded)
}

/// Runbook 4a: the cron must never run twice, so the old one stops before the new one starts.
async fn roll_cron(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) -> StepResult<()> {
    let cron = plan.environment.cron_container.clone();
    step(
        ctx,
        ROLL_CRON,
        format!("{cron}: stop, then start on {}", plan.image),
        async {
            if plan.side_by_side {
                replace_cron(ctx, ROLL_CRON, plan, &plan.image).await
            } else {
                move_cron(ctx, ROLL_CRON, plan, &plan.image).await
            }
        },
    )
    .await
}

/// Runbook 4b: start the new workers first, then drain the old ones (SIGTERM lets in-flight
/// tasks finish), so the pool never empties.
async fn roll_workers(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) -> StepResult<()> {
    let service = plan.workers();
    step(
        ctx,
        ROLL_WORKERS,
        format!("{}: start new, then drain old", service.service),
        async {
            move_workers(
                ctx,
                ROLL_WORKERS,
                plan,
                &plan.previous_worker_image,
                &plan.worker_image,
            )
            .await
        },
    )
    .await
}

/// After the switch, the old colour stays warm while HAProxy's own counters for the new one
/// are watched. `deployctl rollback`, or the counters crossing a threshold, ends the bake
/// with a rollback; otherwise the deploy goes on when the bake period is over.
pub(crate) async fn bake(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) -> StepResult<()> {
    let options = plan.request.bake.unwrap_or_default();
    if options.seconds == 0 || plan.live.is_none() {
        mark(
            ctx,
            BAKE,
            StepState::Skipped,
            "no bake period (or no old colour to return to)",
        );
        return Ok(());
    }
    let period = Duration::from_secs(options.seconds as u64);
    let new = plan.server(plan.target);
    let detail = format!(
        "{}s watching {} (5xx share over {:.0}%, failed checks); {} stays warm",
        options.seconds,
        new.server,
        options.max_5xx_ratio * 100.0,
        colour_name(plan.old())
    );
    step(ctx, BAKE, detail, async {
        let until = later(ctx, period);
        ctx.state_mut(|s| {
            s.status.phase = Phase::Baking as i32;
            s.status.bake_until = until.clone();
        });
        ctx.set_current_details(format!(
            "**Baking** until {until}: `deployctl rollback` returns traffic to {} at once.",
            colour_name(plan.old())
        ));
        let baseline = read_counters(ctx, &new).await?;
        let started = ctx.workflow_time();
        loop {
            let elapsed = match (ctx.workflow_time(), started) {
                (Some(now), Some(start)) => now.duration_since(start).unwrap_or_default(),
                _ => period,
            };
            if elapsed >= period {
                break;
            }
            let tick = (period - elapsed).min(Duration::from_secs(2));
            wait_or_timeout(ctx, tick, "bake check", |s| s.status.rollback.is_some()).await?;
            if let Some(request) = ctx.state(|s| s.status.rollback.clone()) {
                return Err(Stop::RollbackRequested(format!(
                    "by {}: {}",
                    request.requested_by, request.reason
                )));
            }
            let counters = read_counters(ctx, &new).await?;
            if let Some(why) = bake_verdict(&baseline, &counters, &options) {
                return Err(Stop::AutoRollback(why));
            }
        }
        ctx.state_mut(|s| {
            s.status.phase = Phase::Running as i32;
            s.status.bake_until = String::new();
        });
        Ok(())
    })
    .await
}

/// Runbook 5: bring the old colour to the new version too; it leaves rotation for good first,
/// then is ready to take the next deploy.
pub(crate) async fn update_old_colour(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
) -> StepResult<()> {
    let old = plan.old();
    let container = names(&plan.environment, old).container.to_string();
    let detail = format!("{} to {}", colour_name(old), plan.image);
    step(ctx, UPDATE_OLD_COLOUR, detail.clone(), async {
        ctx.execute_activity(
            HaproxyActivities::retire_server,
            plan.server(old),
            quick(format!("take {} out of rotation", colour_name(old))),
        )
        .await?;
        replace_container(
            ctx,
            UPDATE_OLD_COLOUR,
            &container,
            &plan.image,
            plan,
            Duration::ZERO,
            format!("update {detail}"),
        )
        .await?;
        record_version(ctx, colour_variable(&plan.environment, old), &plan.image).await?;
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

/// Writes every image variable once more, so Compose's env file names the whole deploy.
pub(crate) async fn record_versions(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
) -> StepResult<()> {
    // A worker image of its own was recorded by the roll; every other variable names the
    // app image.
    let variables: Vec<String> = plan
        .environment
        .image_variables
        .iter()
        .filter(|variable| {
            plan.worker_image == plan.image || **variable != plan.environment.worker_image_variable
        })
        .cloned()
        .collect();
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

// ---- Moves shared by the steps and by compensation ----------------------------------------

pub(crate) async fn inspect(
    ctx: &WorkflowContext<DeployWorkflow>,
    container: &str,
) -> StepResult<deployctl_activities::docker::ContainerInfo> {
    ctx.execute_activity(
        DockerActivities::inspect_container,
        container.to_string(),
        scoped(ctx, quick(format!("inspect {container}"))),
    )
    .await?
    .ok_or_else(|| {
        Stop::Failed(format!(
            "container {container} does not exist: bring the stack up first"
        ))
    })
}

/// Recreates `container` on `image`; with a nonzero `healthy_within` the same activity also
/// waits for it to be healthy.
pub(crate) async fn replace_container(
    ctx: &WorkflowContext<DeployWorkflow>,
    step_name: &str,
    container: &str,
    image: &str,
    plan: &Plan,
    healthy_within: Duration,
    summary: String,
) -> StepResult<()> {
    ctx.execute_activity(
        DockerActivities::replace_container,
        ReplaceContainer {
            container: container.to_string(),
            image: image.to_string(),
            stop_timeout_seconds: STOP_TIMEOUT.as_secs(),
            config_hashes: plan.config_hashes(image).clone(),
            await_healthy_seconds: healthy_within.as_secs(),
        },
        scoped(ctx, changing_then_waiting(healthy_within, summary)),
    )
    .await?;
    record(
        ctx,
        step_name,
        change::Kind::ContainerReplaced(ContainerReplaced {
            container: container.to_string(),
            previous_image: String::new(),
            new_image: image.to_string(),
        }),
    );
    Ok(())
}

/// Cron onto `image`, stopped first, then started and healthy, in one activity. Beside the
/// worker roll this branch emits no command after its first, so the order in which the two
/// branches' answers arrive can never change the history.
async fn replace_cron(
    ctx: &WorkflowContext<DeployWorkflow>,
    step_name: &str,
    plan: &Plan,
    image: &str,
) -> StepResult<()> {
    let cron = &plan.environment.cron_container;
    let summary = format!("stop {cron}, start it on {image}, await it healthy");
    let healthy_within = CONTAINER_HEALTH_TIMEOUT;
    replace_container(ctx, step_name, cron, image, plan, healthy_within, summary).await
}

/// Cron onto `image` and recorded there: compensation's move. (Deploys begun before
/// `side-by-side` used three activities: replace, record, await healthy.)
pub(crate) async fn move_cron(
    ctx: &WorkflowContext<DeployWorkflow>,
    step_name: &str,
    plan: &Plan,
    image: &str,
) -> StepResult<()> {
    let cron = plan.environment.cron_container.clone();
    if plan.side_by_side {
        replace_cron(ctx, step_name, plan, image).await?;
        return record_version(ctx, &plan.environment.cron_image_variable, image).await;
    }
    replace_container(
        ctx,
        step_name,
        &cron,
        image,
        plan,
        Duration::ZERO,
        format!("stop and restart {cron} on {image}"),
    )
    .await?;
    record_version(ctx, &plan.environment.cron_image_variable, image).await?;
    ctx.execute_activity(
        DockerActivities::await_healthy,
        AwaitHealthy {
            container: cron.clone(),
            timeout_seconds: CONTAINER_HEALTH_TIMEOUT.as_secs(),
        },
        scoped(
            ctx,
            waiting(CONTAINER_HEALTH_TIMEOUT, format!("await {cron} healthy")),
        ),
    )
    .await?;
    Ok(())
}

/// The zero-drop switch from one colour to another (HAProxy activity).
pub(crate) async fn switch(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
    from: Option<Colour>,
    to: Colour,
    to_address: Option<String>,
    keep_old_warm: bool,
    summary: String,
) -> StepResult<()> {
    let environment = &plan.environment;
    ctx.execute_activity(
        HaproxyActivities::switch_traffic,
        SwitchTraffic {
            backend: environment.haproxy_backend.clone(),
            from_server: from.map(|colour| names(environment, colour).server.to_string()),
            to_server: names(environment, to).server.to_string(),
            to_address: to_address.filter(|a| !a.is_empty()),
            to_port: environment.api_port as u16,
            timeout_seconds: SWITCH_TIMEOUT.as_secs(),
            keep_old_warm,
        },
        scoped(ctx, waiting(SWITCH_TIMEOUT * 2, summary)),
    )
    .await?;
    Ok(())
}

/// Records one part's image in Compose's env file as soon as that part changed.
pub(crate) async fn record_version(
    ctx: &WorkflowContext<DeployWorkflow>,
    variable: &str,
    image: &str,
) -> StepResult<()> {
    if variable.is_empty() {
        return Ok(());
    }
    ctx.execute_activity(
        ComposeActivities::record_versions,
        RecordVersions {
            variables: vec![variable.to_string()],
            image: image.to_string(),
        },
        scoped(ctx, quick(format!("record {variable}={image}"))),
    )
    .await?;
    Ok(())
}

async fn read_counters(
    ctx: &WorkflowContext<DeployWorkflow>,
    server: &ServerRef,
) -> StepResult<ServerCounters> {
    Ok(ctx
        .execute_activity(
            HaproxyActivities::read_counters,
            server.clone(),
            quick(format!("read HAProxy counters of {}", server.server)),
        )
        .await?)
}

async fn await_container_healthy(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
    colour: Colour,
) -> StepResult<String> {
    let container = names(&plan.environment, colour).container.to_string();
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
            endpoints: HealthEndpoints::of(&plan.environment),
        },
        waiting(CONTAINER_HEALTH_TIMEOUT, summary),
    )
    .await?;
    Ok(())
}

/// Waits for `condition` for at most `timeout` (zero: no limit). `Ok(true)` if it held, `Ok(false)`
/// when the time ran out. The timer is cancelled when the condition wins, so none is left behind.
pub(crate) async fn wait_or_timeout(
    ctx: &WorkflowContext<DeployWorkflow>,
    timeout: Duration,
    summary: &str,
    condition: impl FnMut(&DeployWorkflow) -> bool,
) -> StepResult<bool> {
    let cancelled = |_| Stop::Aborted(ctx.cancellation_token().reason().unwrap_or_default());
    if timeout.is_zero() {
        ctx.wait_condition(condition).await.map_err(cancelled)?;
        return Ok(true);
    }
    let timer_token = ctx.cancellation_token().child_token();
    let mut timer = ctx.timer(
        TimerOptions::builder(timeout)
            .cancellation_token(timer_token.clone())
            .summary(summary.to_string())
            .build(),
    );
    temporalio_sdk::workflows::select! {
        _ = timer => Ok(false),
        held = ctx.wait_condition(condition) => {
            timer_token.cancel();
            held.map_err(cancelled)?;
            Ok(true)
        }
    }
}

/// RFC 3339 time `after` from now, in workflow time.
fn later(ctx: &WorkflowContext<DeployWorkflow>, after: Duration) -> String {
    ctx.workflow_time()
        .map(|time| {
            chrono::DateTime::<chrono::Utc>::from(time + after)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_default()
}

/// The moves serve both the runbook and compensation. While compensating, they run where no
/// abort reaches them; otherwise an abort cancels them like everything else.
pub(crate) fn scoped(
    ctx: &WorkflowContext<DeployWorkflow>,
    options: temporalio_sdk::ActivityOptions,
) -> temporalio_sdk::ActivityOptions {
    if ctx.state(|s| s.compensating) {
        uncancellable(options)
    } else {
        options
    }
}

pub(crate) fn colour_variable(environment: &Environment, colour: Colour) -> &str {
    match colour {
        Colour::Blue => &environment.blue_image_variable,
        _ => &environment.green_image_variable,
    }
}
