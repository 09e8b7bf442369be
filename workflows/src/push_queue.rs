//! PushQueueWorkflow: one environment's pushed tags, deployed one at a time, latest wins.
//!
//! `deployctl serve` checks each push (its signature, its age, that it is no replay) and hands
//! it over with signal-with-start: the first push of a quiet spell starts the queue, the next
//! ones join it. A push that arrives while a deploy runs replaces the one pending, so when the
//! running deploy ends only the newest tag is deployed. The queue ends once nothing is pending.
//!
//! Each deploy is a child run of `deploy-ENV`, the id `deployctl start` uses, so a push never
//! races a deploy started by hand: the queue waits for whichever one runs to end.

use std::time::Duration;

use deployctl_activities::temporal::TemporalActivities;
use deployctl_proto::v1::{DeployStatus, Push, PushQueue, QueuedDeploy};
use temporalio_common::{
    RetryPolicy, data_converters::RawValue, search_attributes::SearchAttributes,
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, ChildWorkflowCancellationType, ChildWorkflowOptions, ChildWorkflowStartError,
    ParentClosePolicy, StartChildWorkflowExecutionFailedCause, SyncWorkflowContext,
    WorkflowCancellationToken, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::{DeployWorkflow, visibility};

/// How many delivery ids, superseded pushes and refused inputs the queue keeps.
const KEPT: usize = 100;

/// The workflow id of an environment's push queue.
pub fn queue_id(environment: &str) -> String {
    format!("pushes-{environment}")
}

/// The workflow id every deploy of an environment runs under.
pub fn deploy_id(environment: &str) -> String {
    format!("deploy-{environment}")
}

#[workflow]
#[derive(Default)]
pub struct PushQueueWorkflow {
    queue: PushQueue,
}

impl PushQueueWorkflow {
    /// Takes a push in: a delivery seen before is ignored, and a newer push replaces the one
    /// pending (which is kept as superseded).
    fn receive(&mut self, push: Push) {
        let queue = &mut self.queue;
        if queue.deliveries.contains(&push.delivery_id) {
            let note = format!("delivery {} received twice: ignored", push.delivery_id);
            keep_last(&mut queue.refused_inputs, note);
            return;
        }
        keep_last(&mut queue.deliveries, push.delivery_id.clone());
        if let Some(older) = queue.pending.replace(push) {
            keep_last(&mut queue.superseded, spelled(&older));
        }
    }
}

fn keep_last(list: &mut Vec<String>, item: String) {
    list.push(item);
    if list.len() > KEPT {
        list.remove(0);
    }
}

fn spelled(push: &Push) -> String {
    format!("{} (delivery {})", push.tag, push.delivery_id)
}

#[workflow_methods]
impl PushQueueWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        carried: PushQueue,
    ) -> WorkflowResult<PushQueue> {
        // What a previous run carried over, beneath whatever pushes have arrived since (they
        // are newer).
        ctx.state_mut(|s| {
            let arrived = std::mem::replace(&mut s.queue, carried);
            for dropped in arrived.superseded {
                keep_last(&mut s.queue.superseded, dropped);
            }
            for refused in arrived.refused_inputs {
                keep_last(&mut s.queue.refused_inputs, refused);
            }
            if let Some(push) = arrived.pending {
                s.receive(push);
            }
            for delivery in arrived.deliveries {
                if !s.queue.deliveries.contains(&delivery) {
                    keep_last(&mut s.queue.deliveries, delivery);
                }
            }
        });
        let environment = ctx.state(|s| s.queue.environment.clone());
        loop {
            // Cancelled (from the Web UI): the queue ends; a running deploy goes on.
            if ctx
                .wait_condition(|s| s.queue.pending.is_some())
                .await
                .is_err()
            {
                return Ok(ctx.state(|s| s.queue.clone()));
            }
            await_no_deploy(ctx, &environment).await;
            let Some(push) = ctx.state_mut(|s| s.queue.pending.take()) else {
                continue;
            };
            let Some(deployed) = deploy(ctx, &environment, &push).await else {
                // A deploy started by hand won the race: this push waits for it to end,
                // unless a newer one has arrived meanwhile.
                ctx.state_mut(|s| match s.queue.pending.is_some() {
                    true => keep_last(&mut s.queue.superseded, spelled(&push)),
                    false => s.queue.pending = Some(push),
                });
                continue;
            };
            ctx.state_mut(|s| s.queue.deployed.push(deployed));
            if ctx.state(|s| s.queue.pending.is_none()) {
                ctx.state_mut(|s| s.queue.waiting_for = "nothing: done".into());
                return Ok(ctx.state(|s| s.queue.clone()));
            }
            if ctx.continue_as_new_suggested() {
                let mut carried = ctx.state(|s| s.queue.clone());
                carried.deployed.clear();
                ctx.continue_as_new(carried, Default::default())?;
            }
        }
    }

    /// A push from `deployctl serve`: `{"tag": "v2", "delivery_id": "...", "request": {...}}`.
    /// A body that does not read is noted and ignored.
    #[signal(name = "push")]
    pub fn push(&mut self, _ctx: &mut SyncWorkflowContext<Self>, body: RawValue) {
        match crate::lenient::read_body::<Push>("push", body) {
            Ok(push) if push.request.is_some() => self.receive(push),
            Ok(push) => keep_last(
                &mut self.queue.refused_inputs,
                format!("push of {} ignored: it carries no deploy request", push.tag),
            ),
            Err(refused) => keep_last(&mut self.queue.refused_inputs, refused),
        }
    }

    /// The pending push, the deploys started, the pushes superseded, and what the queue waits for.
    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> PushQueue {
        self.queue.clone()
    }
}

/// Waits until no deploy of the environment runs (one started by hand, or by an earlier push).
async fn await_no_deploy(ctx: &WorkflowContext<PushQueueWorkflow>, environment: &str) {
    let id = deploy_id(environment);
    ctx.state_mut(|s| s.queue.waiting_for = format!("{id} to end"));
    let options = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(3600))
        .heartbeat_timeout(Duration::from_secs(20))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .maximum_interval(Duration::from_secs(30))
                .build(),
        )
        .summary(format!("await the end of {id}"))
        .build();
    loop {
        let ended = ctx
            .execute_activity(
                TemporalActivities::await_workflow_ended,
                id.clone(),
                options.clone(),
            )
            .await;
        if matches!(ended, Ok(true)) {
            return;
        }
        // Still running after an hour (a gate with no deadline), or Temporal did not answer.
        ctx.timer(Duration::from_secs(5)).await;
    }
}

/// Deploys the push as a child run of `deploy-ENV`, and waits for it to end. `None`: another
/// deploy of the environment started first.
async fn deploy(
    ctx: &WorkflowContext<PushQueueWorkflow>,
    environment: &str,
    push: &Push,
) -> Option<QueuedDeploy> {
    let request = push.request.clone().unwrap_or_default();
    ctx.state_mut(|s| s.queue.waiting_for = format!("the deploy of {}", push.tag));
    let options = ChildWorkflowOptions::builder()
        .workflow_id(deploy_id(environment))
        // The deploy goes on if the queue is terminated or cancelled.
        .parent_close_policy(ParentClosePolicy::Abandon)
        .cancel_type(ChildWorkflowCancellationType::Abandon)
        .cancellation_token(WorkflowCancellationToken::new())
        .static_summary(visibility::summary(environment, None, &push.tag))
        .static_details(format!(
            "Pushed: tag `{}`, delivery `{}`, requested by **{}**; queued by `deployctl serve`.",
            push.tag, push.delivery_id, request.requested_by
        ))
        .search_attributes(SearchAttributes::new([
            visibility::DEPLOY_ENV.value_set(environment.to_string()),
            visibility::DEPLOY_VERSION.value_set(push.tag.clone()),
        ]))
        .build();
    let started = match ctx
        .start_child_workflow(DeployWorkflow::run, request, options)
        .await
    {
        Ok(started) => started,
        Err(ChildWorkflowStartError::StartFailed {
            cause: StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists,
            ..
        }) => return None,
        Err(error) => {
            return Some(QueuedDeploy {
                tag: push.tag.clone(),
                delivery_id: push.delivery_id.clone(),
                outcome: format!("not started: {error}"),
                ..Default::default()
            });
        }
    };
    let run_id = started.run_id.clone();
    let outcome = match started.result().await {
        Ok(status) => outcome(&status),
        Err(error) => format!("{error}"),
    };
    Some(QueuedDeploy {
        tag: push.tag.clone(),
        delivery_id: push.delivery_id.clone(),
        run_id,
        outcome,
    })
}

fn outcome(status: &DeployStatus) -> String {
    crate::plan::phase_name(status.phase).to_string()
}

#[cfg(test)]
mod tests {
    use deployctl_proto::v1::DeployRequest;

    use super::*;

    fn push(tag: &str, delivery: &str) -> Push {
        Push {
            tag: tag.into(),
            delivery_id: delivery.into(),
            request: Some(DeployRequest::default()),
            ..Default::default()
        }
    }

    #[test]
    fn the_newest_push_wins_and_the_older_ones_are_kept_as_superseded() {
        let mut queue = PushQueueWorkflow::default();
        for (number, tag) in ["v2", "v3", "v4"].iter().enumerate() {
            queue.receive(push(tag, &number.to_string()));
        }
        assert_eq!(queue.queue.pending.as_ref().unwrap().tag, "v4");
        assert_eq!(
            queue.queue.superseded,
            ["v2 (delivery 0)", "v3 (delivery 1)"]
        );
    }

    #[test]
    fn a_delivery_received_twice_is_ignored() {
        let mut queue = PushQueueWorkflow::default();
        queue.receive(push("v2", "d-1"));
        queue.receive(push("v1", "d-1"));
        assert_eq!(queue.queue.pending.as_ref().unwrap().tag, "v2");
        assert!(queue.queue.superseded.is_empty());
        assert_eq!(
            queue.queue.refused_inputs,
            ["delivery d-1 received twice: ignored"]
        );
    }

    #[test]
    fn what_the_queue_keeps_is_bounded() {
        let mut queue = PushQueueWorkflow::default();
        for number in 0..(KEPT + 20) {
            queue.receive(push("v2", &number.to_string()));
        }
        assert_eq!(queue.queue.deliveries.len(), KEPT);
        assert_eq!(queue.queue.superseded.len(), KEPT);
        assert_eq!(
            queue.queue.deliveries.last().unwrap(),
            &(KEPT + 19).to_string()
        );
    }
}
