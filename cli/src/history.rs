//! `deployctl history`: an environment's past deploys, as Temporal's visibility keeps them.
//!
//! Every deploy of an environment is a run of the same workflow id, and Temporal lists every
//! run. What a run says of itself lives in its search attributes (DeployVersion,
//! DeployOutcome) and its memo (who asked, the version it replaced, the gate's answer); runs
//! from before those existed are still listed, with what Temporal knows of them.

use std::time::SystemTime;

use anyhow::Context;
use chrono::{DateTime, Utc};
use deployctl_proto::v1::{ApproveSignal, RejectSignal};
use deployctl_workflows::visibility::{
    DEPLOY_OUTCOME, DEPLOY_VERSION, MEMO_APPROVAL, MEMO_FROM_VERSION, MEMO_REJECTION,
    MEMO_REQUESTED_BY,
};
use futures::StreamExt;
use temporalio_client::{Client, WorkflowExecution, WorkflowExecutionStatus, WorkflowListOptions};

/// One past (or running) deploy.
#[derive(Debug, serde::Serialize)]
pub struct Deploy {
    pub workflow_id: String,
    pub run_id: String,
    pub version: String,
    /// The version the deploy replaced, as the live colour served it when the deploy began.
    pub from_version: String,
    /// "completed", "rejected", "rolled back", "failed", "aborted", or "running".
    pub outcome: String,
    pub started_at: String,
    pub ended_at: String,
    pub seconds: Option<f64>,
    pub requested_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApproveSignal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<RejectSignal>,
    pub web_ui: String,
}

/// The newest `limit` deploys of the workflow id `workflow_id`, newest first.
pub async fn deploys(
    client: &Client,
    workflow_id: &str,
    limit: usize,
    web_ui: &str,
) -> anyhow::Result<Vec<Deploy>> {
    let query = format!("WorkflowId = '{workflow_id}'");
    let options = WorkflowListOptions::builder().limit(limit).build();
    let mut runs = client.list_workflows(query, options);
    let mut deploys = Vec::new();
    while let Some(run) = runs.next().await {
        let run = run.context("listing the environment's deploys in Temporal's visibility")?;
        deploys.push(deploy_of(&run, web_ui));
    }
    deploys.sort_by(|a, b| b.started_at.cmp(&a.started_at));
    Ok(deploys)
}

fn deploy_of(run: &WorkflowExecution, web_ui: &str) -> Deploy {
    let attributes = run.search_attributes();
    let memo = run.memo();
    let text = |key: &str| memo.get::<String>(key).ok().flatten().unwrap_or_default();
    let started = run.start_time();
    let ended = run.close_time();
    Deploy {
        workflow_id: run.id().to_string(),
        run_id: run.run_id().to_string(),
        // Runs started before DeployVersion existed have the version in their plan.
        version: attributes.get(&DEPLOY_VERSION).unwrap_or_else(|| {
            let plan = memo.get::<serde_json::Value>("plan").ok().flatten();
            plan.and_then(|plan| plan["version"].as_str().map(String::from))
                .unwrap_or_default()
        }),
        from_version: text(MEMO_FROM_VERSION),
        outcome: attributes
            .get(&DEPLOY_OUTCOME)
            .unwrap_or_else(|| outcome_of(run.status()).to_string()),
        started_at: started.map(rfc3339).unwrap_or_default(),
        ended_at: ended.map(rfc3339).unwrap_or_default(),
        seconds: started
            .zip(ended)
            .and_then(|(started, ended)| ended.duration_since(started).ok())
            .map(|took| took.as_millis() as f64 / 1000.0),
        requested_by: text(MEMO_REQUESTED_BY),
        approval: memo.get(MEMO_APPROVAL).ok().flatten(),
        rejection: memo.get(MEMO_REJECTION).ok().flatten(),
        web_ui: format!("{web_ui}/{}/{}", run.id(), run.run_id()),
    }
}

/// A run's end as Temporal words it, for runs that recorded no outcome of their own.
fn outcome_of(status: WorkflowExecutionStatus) -> &'static str {
    match status {
        WorkflowExecutionStatus::Running => "running",
        WorkflowExecutionStatus::Completed => "completed",
        WorkflowExecutionStatus::Failed => "failed",
        WorkflowExecutionStatus::Canceled => "aborted",
        WorkflowExecutionStatus::Terminated => "terminated",
        WorkflowExecutionStatus::TimedOut => "timed out",
        _ => "unknown",
    }
}

fn rfc3339(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The table `deployctl history` prints: one line per deploy, newest first.
pub fn render(deploys: &[Deploy]) -> String {
    let mut lines = vec![format!(
        "{:<20}  {:<17}  {:<11}  {:>7}  {:<12}  {}",
        "STARTED (UTC)", "VERSION", "OUTCOME", "TOOK", "REQUESTED BY", "GATE"
    )];
    for deploy in deploys {
        let versions = match deploy.from_version.as_str() {
            "" => format!("→ {}", deploy.version),
            from => format!("{from} → {}", deploy.version),
        };
        let took = deploy
            .seconds
            .map(|seconds| format!("{seconds:.1}s"))
            .unwrap_or_else(|| "-".into());
        let gate = match (&deploy.approval, &deploy.rejection) {
            (Some(approval), _) => said("approved by", &approval.approved_by, &approval.comment),
            (_, Some(rejection)) => said("rejected by", &rejection.rejected_by, &rejection.reason),
            _ => String::new(),
        };
        lines.push(format!(
            "{:<20}  {versions:<17}  {:<11}  {took:>7}  {:<12}  {gate}",
            deploy.started_at.replace('T', " ").trim_end_matches('Z'),
            deploy.outcome,
            deploy.requested_by,
        ));
    }
    lines.join("\n") + "\n"
}

fn said(what: &str, who: &str, why: &str) -> String {
    match why {
        "" => format!("{what} {who}"),
        why => format!("{what} {who}: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(outcome: &str) -> Deploy {
        Deploy {
            workflow_id: "deploy-local".into(),
            run_id: "r1".into(),
            version: "v2".into(),
            from_version: "v1".into(),
            outcome: outcome.into(),
            started_at: "2026-12-06T08:40:12Z".into(),
            ended_at: String::new(),
            seconds: Some(12.34),
            requested_by: "alice".into(),
            approval: None,
            rejection: None,
            web_ui: String::new(),
        }
    }

    #[test]
    fn a_line_per_deploy_with_its_versions_outcome_and_gate() {
        let mut rejected = deploy("rejected");
        rejected.rejection = Some(RejectSignal {
            rejected_by: "bob".into(),
            reason: "not today".into(),
        });
        let table = render(&[deploy("completed"), rejected]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("STARTED (UTC)"));
        assert!(lines[1].starts_with("2026-12-06 08:40:12"), "{table}");
        assert!(lines[1].contains("v1 → v2") && lines[1].contains("completed"));
        assert!(lines[1].contains("12.3s") && lines[1].contains("alice"));
        assert!(lines[2].ends_with("rejected by bob: not today"), "{table}");
    }

    #[test]
    fn runs_without_an_outcome_of_their_own_take_temporals() {
        assert_eq!(outcome_of(WorkflowExecutionStatus::Canceled), "aborted");
        assert_eq!(outcome_of(WorkflowExecutionStatus::Running), "running");
        assert_eq!(
            outcome_of(WorkflowExecutionStatus::Terminated),
            "terminated"
        );
    }
}
