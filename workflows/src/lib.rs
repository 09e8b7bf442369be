//! The deploy workflow and the pure decisions it rests on.
//!
//! `deploy` is the Temporal workflow (its state and the ways in), `preflight` the checks
//! before any change and the Plan they leave, `steps` the runbook's steps,
//! `check` the read-only check of an environment against the running stack, `checklist` the
//! seed's monitoring checklist,
//! `workers` the worker roll in Temporal's terms,
//! `compensation` how a deploy that stops short returns to the last good state, `status` the
//! bookkeeping, `visibility` what Temporal's list of workflows keeps of each deploy, `options`
//! the activity timeouts. `plan` holds the decisions, as pure functions that are unit-tested
//! without a server.

pub mod check;
pub mod checklist;
mod compensation;
pub mod deploy;
mod lenient;
pub mod notify;
mod options;
pub mod plan;
mod preflight;
pub mod push_queue;
mod status;
mod steps;
pub mod visibility;
mod workers;

pub use check::CheckEnvironmentWorkflow;
pub use checklist::ChecklistWorkflow;
pub use deploy::DeployWorkflow;
pub use notify::NotifyWorkflow;
pub use push_queue::PushQueueWorkflow;

/// The task queue the deploy workflow and its activities run on.
pub const DEPLOY_TASK_QUEUE: &str = deployctl_proto::DEFAULT_DEPLOY_TASK_QUEUE;
