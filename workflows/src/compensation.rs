//! How a deploy ends. Completed is the easy case. Every other end (a failed step, a rejection,
//! an expired gate, a rollback, an abort) first returns the stack to the last good state:
//! traffic on the old colour, cron and workers back on the old image, the new colour stopped.
//!
//! Compensation looks at the stack rather than trusting its own records: HAProxy is asked
//! which colour takes traffic, and each move is idempotent ("make it so"), so it is right
//! whether the interrupted step had done nothing, half, or all of its work. Its activities run
//! in their own cancellation scope, so an abort cannot cancel the moves that undo the deploy.
//! Once the old colour is being updated (after the bake), the new release *is* the last good
//! state, and nothing is undone.

use deployctl_activities::{
    docker::{DockerActivities, ReplaceContainer},
    haproxy::HaproxyActivities,
};
use deployctl_proto::v1::{DeployStatus, Phase};
use temporalio_sdk::{ApplicationFailure, WorkflowContext, WorkflowResult, WorkflowTermination};

use crate::{
    DeployWorkflow,
    notify::notify,
    options::*,
    plan::*,
    preflight::Plan,
    status::{StepResult, Stop, set_phase, started},
    steps::{colour_variable, move_cron, record_version, replace_container, scoped, switch},
    visibility::record_outcome,
    workers::move_workers,
};

pub(crate) async fn finish(
    ctx: &WorkflowContext<DeployWorkflow>,
    plan: Option<&Plan>,
    outcome: StepResult<()>,
) -> WorkflowResult<DeployStatus> {
    let stop = match outcome {
        Ok(()) => {
            set_phase(ctx, Phase::Completed);
            ctx.set_current_details("**Completed**");
            let status = ctx.state(|s| s.status.clone());
            record_outcome(ctx, &status);
            notify(
                ctx,
                "completed",
                format!("{} serves {}", status.environment, status.version),
            )
            .await;
            return Ok(status);
        }
        Err(stop) => stop,
    };
    ctx.state_mut(|s| {
        s.compensating = true;
        s.status.error = stop.to_string();
        s.status.gate = None;
        s.status.bake_until = String::new();
    });
    if let Some(plan) = plan.filter(|_| !started(ctx, UPDATE_OLD_COLOUR)) {
        set_phase(ctx, Phase::RollingBack);
        ctx.set_current_details(format!("**Rolling back**: {stop}"));
        roll_back(ctx, plan).await;
    }
    let (phase, words, event) = match &stop {
        Stop::Failed(_) => (Phase::Failed, "Failed", "failed"),
        Stop::Rejected(_) => (Phase::Rejected, "Rejected", "rejected"),
        Stop::RollbackRequested(_) | Stop::AutoRollback(_) => {
            (Phase::RolledBack, "Rolled back", "rolled_back")
        }
        Stop::Aborted(_) => (Phase::Aborted, "Aborted", "aborted"),
    };
    set_phase(ctx, phase);
    if let Stop::Aborted(reason) = &stop {
        ctx.state_mut(|s| s.status.abort_reason = reason.clone());
    }
    let undone = ctx.state(|s| s.status.compensation.join("; "));
    ctx.set_current_details(format!("**{words}**: {stop}. {undone}"));
    let status = ctx.state(|s| s.status.clone());
    record_outcome(ctx, &status);
    notify(ctx, event, format!("{stop}. {undone}")).await;
    match stop {
        Stop::Rejected(_) => Ok(status),
        Stop::Aborted(_) => Err(WorkflowTermination::cancelled_with_details(status)),
        Stop::Failed(error) => Err(final_failure(error, "DeployFailed")),
        other => Err(final_failure(other.to_string(), "RolledBack")),
    }
}

fn final_failure(message: String, type_name: &str) -> WorkflowTermination {
    ApplicationFailure::builder(message)
        .type_name(type_name.to_string())
        .non_retryable(true)
        .build()
        .into()
}

/// Back to the last good state, traffic first: it is what users feel.
async fn roll_back(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) {
    let target = colour_name(plan.target);
    let old = colour_name(plan.old());
    if started(ctx, SWITCH_TRAFFIC) && plan.live.is_some() && takes_traffic(ctx, plan).await {
        let moved = switch(
            ctx,
            plan,
            Some(plan.target),
            plan.old(),
            None,
            false,
            format!("return traffic to {old}"),
        )
        .await;
        note(
            ctx,
            match moved {
                Ok(()) => format!("traffic returned to {old}"),
                Err(stop) => format!("traffic stays on {target}: {old} could not take it ({stop})"),
            },
        );
    }
    if started(ctx, ROLL_WORKERS) {
        let image = plan.previous_worker_image.clone();
        let moved = move_workers(ctx, "roll back", plan, &plan.worker_image, &image).await;
        note(ctx, outcome(moved, format!("workers back on {image}")));
    }
    if started(ctx, ROLL_CRON) {
        let image = plan.previous_cron_image.clone();
        let moved = move_cron(ctx, "roll back", plan, &image).await;
        note(ctx, outcome(moved, format!("cron back on {image}")));
    }
    if started(ctx, START_IDLE_COLOUR) && !takes_traffic(ctx, plan).await {
        let moved = idle_colour_back(ctx, plan).await;
        note(
            ctx,
            outcome(
                moved,
                format!(
                    "{target} back on {} and stopped",
                    plan.previous_target_image
                ),
            ),
        );
    }
}

/// The new colour takes no traffic: it goes back to the image it had, as Compose's env file
/// says again, and is stopped, so that a later `docker compose up -d` brings back what ran
/// before, never the release that failed.
async fn idle_colour_back(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) -> StepResult<()> {
    let container = names(&plan.environment, plan.target).container.to_string();
    let image = plan.previous_target_image.clone();
    if !image.is_empty() {
        let summary = format!("put {container} back on {image}");
        let healthy_within = std::time::Duration::ZERO;
        replace_container(
            ctx,
            "roll back",
            &container,
            &image,
            plan,
            healthy_within,
            summary,
        )
        .await?;
        record_version(ctx, colour_variable(&plan.environment, plan.target), &image).await?;
    }
    ctx.execute_activity(
        DockerActivities::stop_container,
        ReplaceContainer {
            container: container.clone(),
            image: String::new(),
            stop_timeout_seconds: STOP_TIMEOUT.as_secs(),
            config_hashes: Default::default(),
            await_healthy_seconds: 0,
        },
        uncancellable(changing(format!("stop {container}: it takes no traffic"))),
    )
    .await?;
    Ok(())
}

fn outcome(result: StepResult<()>, done: String) -> String {
    match result {
        Ok(()) => done,
        Err(stop) => format!("not done: {done}: {stop}"),
    }
}

/// Whether HAProxy sends traffic to the target colour. Asked, not assumed: a switch can fail
/// after it moved traffic. When HAProxy cannot be read, the answer is "yes", so the new
/// colour is never stopped blind.
async fn takes_traffic(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) -> bool {
    let backend = plan.environment.haproxy_backend.clone();
    let server = names(&plan.environment, plan.target).server.to_string();
    let servers = ctx
        .execute_activity(
            HaproxyActivities::read_backend,
            backend,
            scoped(
                ctx,
                quick(format!("ask HAProxy whether {server} takes traffic")),
            ),
        )
        .await;
    match servers {
        Ok(servers) => servers
            .iter()
            .any(|s| s.name == server && s.carries_traffic),
        Err(_) => true,
    }
}

fn note(ctx: &WorkflowContext<DeployWorkflow>, line: String) {
    tracing::info!(compensation = %line);
    ctx.state_mut(|s| s.status.compensation.push(line));
}
