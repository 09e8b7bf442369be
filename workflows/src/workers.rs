//! Runbook 4b, the worker roll, in Temporal's terms.
//!
//! The pool that runs this workflow is the pool being rolled, so the hand-over follows what
//! Temporal itself counts: the new version's workers start and poll every task queue, become
//! Current (after an optional ramp), and the old version's workers are stopped only once
//! Temporal reports it Drained, that is once no open Pinned workflow is left on it. This
//! workflow is Auto-Upgrade: at its next task after the switch it runs on the new workers.
//!
//! Every activity here is idempotent, so when the worker running one of them is killed the
//! retry on another worker resumes where it left off.

use std::time::Duration;

use deployctl_activities::{
    docker::{DockerActivities, DrainWorkers, StartWorkers},
    temporal::{AwaitDrained, AwaitPolling, SetRamping, TemporalActivities, VersionRef},
};
use deployctl_proto::v1::{WorkersReplaced, change};
use temporalio_sdk::WorkflowContext;

use crate::{
    DeployWorkflow,
    options::*,
    plan::build_id,
    preflight::Plan,
    status::{StepResult, record},
    steps::{record_version, scoped, wait_or_timeout},
};

/// Deploys that began before the pool was versioned roll their workers as they began:
/// start new, then stop old.
const WORKER_DEPLOYMENTS: &str = "worker-deployments";

const POLLING_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

/// Moves the pool from `from_image` to `image`; the runbook and compensation both use it.
pub(crate) async fn move_workers(
    ctx: &WorkflowContext<DeployWorkflow>,
    step_name: &str,
    plan: &Plan,
    from_image: &str,
    image: &str,
) -> StepResult<()> {
    let versioned =
        !plan.environment.worker_deployment_name.is_empty() && ctx.patched(WORKER_DEPLOYMENTS);
    let surge = match plan.request.worker_roll.as_ref().map(|r| r.surge) {
        Some(surge) if versioned && surge > 0 => surge.min(plan.worker_count),
        _ => plan.worker_count,
    };
    let mut started = start_workers(ctx, plan, image, surge).await?;
    let (current, drained) = if versioned {
        let new = version(plan, image);
        let old = version(plan, from_image);
        await_polling(ctx, plan, &new).await?;
        ramp(ctx, plan, &new).await?;
        make_current(ctx, &new).await?;
        record_version(ctx, &plan.environment.worker_image_variable, image).await?;
        if old != new {
            await_drained(ctx, plan, &old).await?;
        }
        (new.spelled(), old.spelled())
    } else {
        record_version(ctx, &plan.environment.worker_image_variable, image).await?;
        (String::new(), String::new())
    };
    let removed = stop_old_workers(ctx, plan, image).await?;
    if versioned {
        // The replicas beyond the surge, and any killed during the roll: the pool ends at the
        // wanted size.
        started.extend(start_workers(ctx, plan, image, plan.worker_count).await?);
    }
    record(
        ctx,
        step_name,
        change::Kind::WorkersReplaced(WorkersReplaced {
            removed,
            started,
            previous_image: from_image.to_string(),
            new_image: image.to_string(),
            current_version: current,
            drained_version: drained,
        }),
    );
    Ok(())
}

fn version(plan: &Plan, image: &str) -> VersionRef {
    VersionRef {
        deployment_name: plan.environment.worker_deployment_name.clone(),
        build_id: build_id(image),
    }
}

/// 1. `count` new replicas (the surge, or as many as the environment wants), started and
///    healthy.
async fn start_workers(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
    image: &str,
    count: u32,
) -> StepResult<Vec<String>> {
    let started = ctx
        .execute_activity(
            DockerActivities::start_workers,
            StartWorkers {
                service: plan.workers(),
                image: image.to_string(),
                count,
                timeout_seconds: CONTAINER_HEALTH_TIMEOUT.as_secs(),
                config_hashes: plan.config_hashes(image).clone(),
            },
            scoped(
                ctx,
                waiting(
                    CONTAINER_HEALTH_TIMEOUT,
                    format!("start {count} workers on {image}"),
                ),
            ),
        )
        .await?;
    Ok(started)
}

/// 2. Temporal reports the new version polling on every task queue of the pool.
async fn await_polling(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
    version: &VersionRef,
) -> StepResult<()> {
    ctx.execute_activity(
        TemporalActivities::await_version_polling,
        AwaitPolling {
            version: version.clone(),
            task_queues: plan.environment.worker_task_queues.clone(),
            timeout_seconds: POLLING_TIMEOUT.as_secs(),
        },
        scoped(
            ctx,
            waiting(POLLING_TIMEOUT, format!("await {version} polling")),
        ),
    )
    .await?;
    Ok(())
}

/// 3a. Optionally, a share of new workflows first, each step held for a while.
async fn ramp(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
    version: &VersionRef,
) -> StepResult<()> {
    let Some(roll) = plan.request.worker_roll.as_ref() else {
        return Ok(());
    };
    for percentage in &roll.ramp_percentages {
        ctx.execute_activity(
            TemporalActivities::set_ramping_version,
            SetRamping {
                version: version.clone(),
                percentage: *percentage as f32,
            },
            scoped(ctx, quick(format!("ramp {version} to {percentage}%"))),
        )
        .await?;
        let pause = Duration::from_secs(roll.ramp_pause_seconds.into());
        wait_or_timeout(ctx, pause, &format!("hold {percentage}%"), |_| false).await?;
    }
    Ok(())
}

/// 3b. The new version becomes Current: new workflows, and this one, move to it.
async fn make_current(
    ctx: &WorkflowContext<DeployWorkflow>,
    version: &VersionRef,
) -> StepResult<()> {
    ctx.execute_activity(
        TemporalActivities::set_current_version,
        version.clone(),
        scoped(ctx, quick(format!("make {version} Current"))),
    )
    .await?;
    Ok(())
}

/// 4. The old version Drained: no open Pinned workflow left on it.
async fn await_drained(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
    version: &VersionRef,
) -> StepResult<()> {
    let timeout = plan
        .request
        .worker_roll
        .as_ref()
        .map(|roll| Duration::from_secs(roll.drain_timeout_seconds.into()))
        .filter(|timeout| !timeout.is_zero())
        .unwrap_or(DEFAULT_DRAIN_TIMEOUT);
    ctx.execute_activity(
        TemporalActivities::await_drained,
        AwaitDrained {
            version: version.clone(),
            timeout_seconds: timeout.as_secs(),
        },
        scoped(ctx, waiting(timeout, format!("await {version} drained"))),
    )
    .await?;
    Ok(())
}

/// 5 and 6. SIGTERM to the old replicas (they poll no more and finish in-flight activities
/// within their grace period), then remove them.
async fn stop_old_workers(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: &Plan,
    image: &str,
) -> StepResult<Vec<String>> {
    let removed = ctx
        .execute_activity(
            DockerActivities::drain_workers,
            DrainWorkers {
                service: plan.workers(),
                keep_image: image.to_string(),
                stop_timeout_seconds: STOP_TIMEOUT.as_secs(),
            },
            scoped(ctx, changing(format!("drain the workers not on {image}"))),
        )
        .await?;
    Ok(removed)
}
