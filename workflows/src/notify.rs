//! Notifications: each turn of a deploy (started, waiting for approval, and how it ended) is
//! POSTed as JSON to the environment's `notify_url`.
//!
//! The deploy hands each one to a child workflow of its own, abandoned on close, and waits
//! only for that child to start. The child retries a receiver that is slow, down or failing;
//! nothing it does can hold up or fail the deploy, and the Web UI lists each delivery apart.

use std::time::Duration;

use deployctl_activities::notify::NotifyActivities;
use deployctl_proto::v1::{Notification, NotifyRequest};
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityCloseTimeouts, ActivityOptions, ChildWorkflowCancellationType, ChildWorkflowOptions,
    ParentClosePolicy, WorkflowCancellationToken, WorkflowContext, WorkflowResult,
};

use crate::DeployWorkflow;

/// From this release on a deploy with a `notify_url` tells it each turn (a patch, so that
/// deploys started earlier replay as they ran).
const NOTIFICATIONS: &str = "notifications";

pub const STARTED: &str = "started";
pub const WAITING_FOR_APPROVAL: &str = "waiting_for_approval";

/// Tells the environment's receiver, if it has one, that the deploy reached `event`.
pub(crate) async fn notify(ctx: &WorkflowContext<DeployWorkflow>, event: &str, detail: String) {
    let url = ctx.state(|s| s.notify_url.clone());
    if url.is_empty() || !ctx.patched(NOTIFICATIONS) {
        return;
    }
    let status = ctx.state(|s| s.status.clone());
    let notification = Notification {
        event: event.to_string(),
        environment: status.environment.clone(),
        version: status.version.clone(),
        from_version: crate::plan::previous_version(&status).unwrap_or_default(),
        requested_by: status.requested_by.clone(),
        workflow_id: ctx.workflow_id().to_string(),
        run_id: ctx.run_id().to_string(),
        detail,
        at: crate::status::now(ctx),
    };
    let options = ChildWorkflowOptions::builder()
        .workflow_id(format!("notify-{}-{event}", ctx.run_id()))
        .parent_close_policy(ParentClosePolicy::Abandon)
        .cancel_type(ChildWorkflowCancellationType::Abandon)
        // Not the deploy's scope: an abort must not stop the news of it.
        .cancellation_token(WorkflowCancellationToken::new())
        .static_summary(format!("notify {event}: {}", status.version))
        .build();
    let request = NotifyRequest {
        url,
        notification: Some(notification),
    };
    if let Err(error) = ctx
        .start_child_workflow(NotifyWorkflow::run, request, options)
        .await
    {
        tracing::warn!(%error, event, "the notification could not be handed over");
    }
}

/// Delivers one notification, retrying the receiver for up to an hour.
#[workflow]
#[derive(Default)]
pub struct NotifyWorkflow;

#[workflow_methods]
impl NotifyWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        request: NotifyRequest,
    ) -> WorkflowResult<()> {
        let event = request
            .notification
            .as_ref()
            .map(|n| n.event.clone())
            .unwrap_or_default();
        let options =
            ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
                schedule_to_close: Duration::from_secs(3600),
                start_to_close: Duration::from_secs(15),
            })
            .retry_policy(
                RetryPolicy::builder()
                    .initial_interval(Duration::from_secs(1))
                    .backoff_coefficient(2.0)
                    .maximum_interval(Duration::from_secs(60))
                    .build(),
            )
            .summary(format!("POST {event} to {}", request.url))
            .build();
        ctx.execute_activity(NotifyActivities::post_notification, request, options)
            .await?;
        Ok(())
    }
}
