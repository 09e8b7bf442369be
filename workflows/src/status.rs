//! Bookkeeping: the status the `status` query and the Web UI show. Each step marks itself
//! running, then done or failed, with workflow timestamps; changes and compensation leave
//! an audit line each.

use std::future::Future;

use chrono::{DateTime, SecondsFormat, Utc};
use deployctl_proto::v1::{Change, DeployRequest, DeployStatus, Phase, Step, StepState, change};
use temporalio_sdk::{ActivityExecutionError, WorkflowContext};

use crate::{DeployWorkflow, plan::STEPS};

/// Why the deploy stopped short of the end.
#[derive(Debug)]
pub(crate) enum Stop {
    Failed(String),
    Rejected(String),
    RollbackRequested(String),
    /// The bake saw the new colour misbehave.
    AutoRollback(String),
    Aborted(String),
}

pub(crate) type StepResult<T> = Result<T, Stop>;

impl From<ActivityExecutionError> for Stop {
    fn from(error: ActivityExecutionError) -> Self {
        Stop::Failed(describe(&error))
    }
}

pub(crate) fn begin(ctx: &WorkflowContext<DeployWorkflow>, request: &DeployRequest) {
    let started_at = now(ctx);
    ctx.state_mut(|s| {
        s.status = DeployStatus {
            environment: match &request.environment {
                Some(inline) => inline.name.clone(),
                // Unchecked yet (preflight checks it): bounded, whatever was sent.
                None => request.environment_name.chars().take(128).collect(),
            },
            version: request.version.clone(),
            phase: Phase::Running as i32,
            requested_by: request.requested_by.clone(),
            started_at,
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

/// Runs one step: marks it running, then done or failed. A failure while the workflow is
/// being cancelled is the abort, not the step's own fault.
pub(crate) async fn step<T>(
    ctx: &WorkflowContext<DeployWorkflow>,
    name: &str,
    detail: String,
    work: impl Future<Output = StepResult<T>>,
) -> StepResult<T> {
    mark(ctx, name, StepState::Running, &detail);
    ctx.set_current_details(format!("**{name}**: {detail}"));
    let result = abort_wins(ctx, work.await);
    match &result {
        Ok(_) => mark(ctx, name, StepState::Done, &detail),
        Err(stop) => {
            mark(ctx, name, StepState::Failed, &stop.to_string());
            ctx.state_mut(|s| s.status.failed_step = name.to_string());
        }
    }
    result
}

/// A failure while the workflow is being cancelled is the abort, not the step's own fault.
pub(crate) fn abort_wins<T>(
    ctx: &WorkflowContext<DeployWorkflow>,
    result: StepResult<T>,
) -> StepResult<T> {
    let token = ctx.cancellation_token();
    match result {
        Err(Stop::Failed(_)) if token.is_cancelled() => {
            Err(Stop::Aborted(token.reason().unwrap_or_default()))
        }
        other => other,
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Failed(error) => write!(f, "{error}"),
            Stop::Rejected(why) => write!(f, "rejected: {why}"),
            Stop::RollbackRequested(why) => write!(f, "rollback requested: {why}"),
            Stop::AutoRollback(why) => write!(f, "rolled back by the bake: {why}"),
            Stop::Aborted(why) => write!(f, "aborted: {why}"),
        }
    }
}

pub(crate) fn mark(
    ctx: &WorkflowContext<DeployWorkflow>,
    name: &str,
    state: StepState,
    detail: &str,
) {
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

/// Whether a step got as far as starting: what compensation has to look at.
pub(crate) fn started(ctx: &WorkflowContext<DeployWorkflow>, name: &str) -> bool {
    ctx.state(|s| {
        s.status.steps.iter().any(|step| {
            step.name == name
                && [StepState::Running, StepState::Done, StepState::Failed]
                    .contains(&StepState::try_from(step.state).unwrap_or_default())
        })
    })
}

pub(crate) fn record(ctx: &WorkflowContext<DeployWorkflow>, step: &str, kind: change::Kind) {
    ctx.state_mut(|s| {
        s.status.changes.push(Change {
            step: step.to_string(),
            kind: Some(kind),
        })
    });
}

pub(crate) fn set_phase(ctx: &WorkflowContext<DeployWorkflow>, phase: Phase) {
    ctx.state_mut(|s| s.status.phase = phase as i32);
}

pub(crate) fn now(ctx: &WorkflowContext<DeployWorkflow>) -> String {
    ctx.workflow_time()
        .map(|time| DateTime::<Utc>::from(time).to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The innermost failure message: the activity's own words, not the wrapper's.
pub(crate) fn describe(error: &ActivityExecutionError) -> String {
    let Some(mut failure) = error.failure() else {
        return error.to_string();
    };
    while let Some(cause) = failure.cause.as_deref() {
        failure = cause;
    }
    failure.message.clone()
}
