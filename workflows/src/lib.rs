//! The deploy workflow and the pure decisions it rests on.
//!
//! `deploy` is the Temporal workflow (orchestration only, deterministic); `plan` holds the
//! decisions it makes, as pure functions that are unit-tested without a server.

pub mod deploy;
pub mod plan;

pub use deploy::DeployWorkflow;

/// The task queue the deploy workflow and its activities run on.
pub const DEPLOY_TASK_QUEUE: &str = "deployctl";
