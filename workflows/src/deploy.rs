//! DeployWorkflow: the seed's manual blue-green deploy as one durable Temporal workflow.
//!
//! `run` reads like the runbook: one short function per step, in order (`steps.rs`). Any way
//! the deploy stops short (a failed step, a rejection, an expired gate, a rollback, an abort)
//! ends in `compensation.rs`, which puts the stack back on the last good state. This file
//! holds the workflow's state and the ways in: updates, lenient signals and the status query.
//!
//! Input can never wedge a deploy. `approve`, `reject` and `rollback` are Updates whose
//! validators refuse a bad body or a missing gate before anything enters history. The
//! `approve` and `reject` signals (the Web UI's signal form) stay for convenience; they read
//! their body leniently, and a body they cannot read is noted in the status and ignored.

use deployctl_proto::v1::{
    Accepted, ApproveSignal, DeployRequest, DeployStatus, Phase, RejectSignal, RollbackRequest,
};
use temporalio_common::data_converters::RawValue;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::{
    compensation::finish,
    notify::{self, notify},
    status::{StepResult, begin},
    steps::*,
};

type Refusal = Box<dyn std::error::Error + Send + Sync>;

#[workflow]
#[derive(Default)]
pub struct DeployWorkflow {
    pub(crate) status: DeployStatus,
    /// Compensation is running: its moves must not be cancelled by an abort.
    pub(crate) compensating: bool,
    /// The environment's receiver of notifications, once preflight has found the environment.
    pub(crate) notify_url: String,
}

impl DeployWorkflow {
    /// The gate has its answer: approved or rejected, whichever came first.
    pub(crate) fn decided(&self) -> bool {
        self.status.approval.is_some() || self.status.rejection.is_some()
    }

    fn gate_waiting(&self) -> Result<(), Refusal> {
        if self.status.gate.is_some() && !self.decided() {
            return Ok(());
        }
        Err(format!(
            "no approval gate is waiting: the deploy of {} is {}",
            self.status.version,
            crate::plan::phase_name(self.status.phase)
        )
        .into())
    }

    /// A lenient signal body: JSON of `T`, or a note in the status saying why not.
    fn read_signal<T: serde::de::DeserializeOwned>(
        &mut self,
        name: &str,
        body: RawValue,
    ) -> Option<T> {
        crate::lenient::read_body(name, body)
            .map_err(|refused| self.status.refused_inputs.push(refused))
            .ok()
    }
}

#[workflow_methods]
impl DeployWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        request: DeployRequest,
    ) -> WorkflowResult<DeployStatus> {
        begin(ctx, &request);
        let ctx = &*ctx;
        let mut plan = None;
        let outcome = Self::runbook(ctx, &request, &mut plan).await;
        finish(ctx, plan.as_ref(), outcome).await
    }

    /// The deploy, step by step, as the seed's runbook does it by hand.
    async fn runbook(
        ctx: &WorkflowContext<Self>,
        request: &DeployRequest,
        plan: &mut Option<Plan>,
    ) -> StepResult<()> {
        let plan = &*plan.insert(preflight(ctx, request).await?);
        notify(ctx, notify::STARTED, plan.describe()).await;
        start_idle_colour(ctx, plan).await?;
        await_migrations(ctx, plan).await?;
        let address = await_health(ctx, plan).await?;
        approval(ctx, plan).await?;
        switch_traffic(ctx, plan, address).await?;
        roll_cron_and_workers(ctx, plan).await?;
        bake(ctx, plan).await?;
        update_old_colour(ctx, plan).await?;
        record_versions(ctx, plan).await
    }

    #[update_validator(approve)]
    fn validate_approve(
        &self,
        _ctx: &WorkflowContextView,
        _input: &ApproveSignal,
    ) -> Result<(), Refusal> {
        self.gate_waiting()
    }

    /// Lets a deploy held at the approval gate switch traffic.
    #[update]
    pub fn approve(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        input: ApproveSignal,
    ) -> Accepted {
        self.status.approval = Some(input);
        Accepted {
            message: "approved: the deploy switches traffic now".into(),
        }
    }

    #[update_validator(reject)]
    fn validate_reject(
        &self,
        _ctx: &WorkflowContextView,
        _input: &RejectSignal,
    ) -> Result<(), Refusal> {
        self.gate_waiting()
    }

    /// Stops a deploy held at the approval gate; traffic stays on the live colour.
    #[update]
    pub fn reject(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        input: RejectSignal,
    ) -> Accepted {
        self.status.rejection = Some(input);
        Accepted {
            message: "rejected: traffic stays on the live colour; the new colour is stopped".into(),
        }
    }

    #[update_validator(rollback)]
    fn validate_rollback(
        &self,
        _ctx: &WorkflowContextView,
        _input: &RollbackRequest,
    ) -> Result<(), Refusal> {
        if self.status.phase == Phase::Baking as i32 && self.status.rollback.is_none() {
            return Ok(());
        }
        Err(format!(
            "the deploy of {} is {}, not baking: only a baking deploy rolls back by a traffic flip",
            self.status.version,
            crate::plan::phase_name(self.status.phase)
        )
        .into())
    }

    /// During the bake: traffic back to the old colour at once, then cron and workers.
    #[update]
    pub fn rollback(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        input: RollbackRequest,
    ) -> Accepted {
        self.status.rollback = Some(input);
        Accepted {
            message: "rolling back: traffic returns to the old colour now".into(),
        }
    }

    /// The Web UI's "Send a Signal" form: `approve` with `{"approved_by": "...", "comment": "..."}`.
    #[signal(name = "approve")]
    pub fn approve_signal(&mut self, _ctx: &mut SyncWorkflowContext<Self>, body: RawValue) {
        let Some(input) = self.read_signal::<ApproveSignal>("approve", body) else {
            return;
        };
        match self.gate_waiting() {
            Ok(()) => self.status.approval = Some(input),
            Err(why) => self
                .status
                .refused_inputs
                .push(format!("signal approve ignored: {why}")),
        }
    }

    /// The Web UI's "Send a Signal" form: `reject` with `{"rejected_by": "...", "reason": "..."}`.
    #[signal(name = "reject")]
    pub fn reject_signal(&mut self, _ctx: &mut SyncWorkflowContext<Self>, body: RawValue) {
        let Some(input) = self.read_signal::<RejectSignal>("reject", body) else {
            return;
        };
        match self.gate_waiting() {
            Ok(()) => self.status.rejection = Some(input),
            Err(why) => self
                .status
                .refused_inputs
                .push(format!("signal reject ignored: {why}")),
        }
    }

    /// The phase, every step with its state and times, and the gate being waited on.
    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> DeployStatus {
        self.status.clone()
    }
}
