//! What Temporal's visibility keeps of each deploy, for `deployctl history` and the Web UI's
//! workflow list: three search attributes, and two memo fields the deploy writes as it ends.
//!
//! The start sets DeployEnv and DeployVersion (`deployctl start`); the workflow sets
//! DeployOutcome when it ends. The worker registers all three before it polls, so no deploy
//! can stall on an attribute the namespace does not know.

use deployctl_proto::v1::DeployStatus;
use temporalio_common::{
    protos::temporal::api::enums::v1::IndexedValueType, search_attributes::SearchAttributeKey,
};
use temporalio_sdk::{MemoValue, WorkflowContext};

use crate::DeployWorkflow;

pub const DEPLOY_ENV: SearchAttributeKey<String> = SearchAttributeKey::keyword("DeployEnv");
pub const DEPLOY_VERSION: SearchAttributeKey<String> = SearchAttributeKey::keyword("DeployVersion");
/// The phase a deploy ended in, as `deployctl status` words it: "completed", "rolled back"...
pub const DEPLOY_OUTCOME: SearchAttributeKey<String> = SearchAttributeKey::keyword("DeployOutcome");

/// Every search attribute a deploy uses, as the namespace must know them.
pub const SEARCH_ATTRIBUTES: [(&str, IndexedValueType); 3] = [
    ("DeployEnv", IndexedValueType::Keyword),
    ("DeployVersion", IndexedValueType::Keyword),
    ("DeployOutcome", IndexedValueType::Keyword),
];

/// The memo fields `deployctl start` writes: who asked, and the version it replaces (which
/// the deploy writes again as it ends, from what preflight found live).
pub const MEMO_REQUESTED_BY: &str = "requested_by";
pub const MEMO_FROM_VERSION: &str = "from_version";
/// The memo fields the deploy writes as it ends: the gate's answer, with who gave it and why.
pub const MEMO_APPROVAL: &str = "approval";
pub const MEMO_REJECTION: &str = "rejection";

/// The run's one line in the Web UI: `deploy local v1 → v2`.
pub fn summary(environment: &str, live: Option<&str>, version: &str) -> String {
    match live {
        Some(live) => format!("deploy {environment} {live} → {version}"),
        None => format!("deploy {environment} → {version}"),
    }
}

/// From this release on a deploy leaves its outcome and its gate's answer in visibility (a
/// patch, so that deploys started earlier replay as they ran).
const OUTCOME_IN_VISIBILITY: &str = "outcome-in-visibility";

/// Writes how the deploy ended (and from which version) where `deployctl history` and the Web UI's list read it.
pub(crate) fn record_outcome(ctx: &WorkflowContext<DeployWorkflow>, status: &DeployStatus) {
    if !ctx.patched(OUTCOME_IN_VISIBILITY) {
        return;
    }
    let outcome = crate::plan::phase_name(status.phase);
    ctx.upsert_search_attributes([DEPLOY_OUTCOME.value_set(outcome.to_string())]);
    let mut fields = Vec::new();
    // Preflight read what the live colour ran: a surer from-version than the start's guess.
    if let Some(tag) = crate::plan::previous_version(status) {
        fields.push((MEMO_FROM_VERSION, Some(MemoValue::new(tag))));
    }
    if let Some(approval) = &status.approval {
        fields.push((MEMO_APPROVAL, Some(MemoValue::new(approval.clone()))));
    }
    if let Some(rejection) = &status.rejection {
        fields.push((MEMO_REJECTION, Some(MemoValue::new(rejection.clone()))));
    }
    // A value that cannot be written emits no command, so the history is the same either way.
    if !fields.is_empty()
        && let Err(error) = ctx.upsert_memo(fields)
    {
        tracing::warn!(%error, "the deploy's end could not be written to the memo");
    }
}
