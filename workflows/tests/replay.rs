//! Determinism: recorded histories of real deploys (completed, rejected at the gate, refused
//! at preflight, rolled back during the bake, aborted during the worker roll) must replay against today's workflow code. A change that would break
//! deploys in flight during a worker upgrade fails here, with no server needed.
//!
//! Record the latest deploy of the compose stack as a new history with
//! `RECORD_AS=name cargo test -p deployctl-workflows --test replay -- --ignored record`.

use deployctl_workflows::DeployWorkflow;
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

async fn replay(name: &str) {
    let path = format!("{}/tests/histories/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let json = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let history = WorkflowHistory::from_json(&json).expect("a history in Temporal's JSON");
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<DeployWorkflow>()
        .unwrap()
        .build();
    let replayer = WorkflowReplayer::new(options).unwrap();
    replayer
        .replay_workflow(history)
        .await
        .unwrap_or_else(|e| panic!("{name} no longer replays: {e}"));
}

#[tokio::test]
async fn a_completed_deploy_replays() {
    replay("completed").await;
}

#[tokio::test]
async fn a_deploy_rejected_at_the_gate_replays() {
    replay("rejected").await;
}

#[tokio::test]
async fn a_deploy_refused_at_preflight_replays() {
    replay("refused").await;
}

#[tokio::test]
async fn a_deploy_rolled_back_during_the_bake_replays() {
    replay("rolled_back").await;
}

#[tokio::test]
async fn a_deploy_aborted_during_the_worker_roll_replays() {
    replay("aborted").await;
}

/// Not a check: writes the latest `deploy-local` run to `tests/histories/$RECORD_AS.json`.
#[tokio::test]
#[ignore = "records a fixture from a running stack"]
async fn record() {
    let name = std::env::var("RECORD_AS").expect("RECORD_AS names the history file");
    let temporal = deployctl_worker::TemporalArgs {
        address: "127.0.0.1:7233".into(),
        namespace: "default".into(),
    };
    let client = deployctl_worker::connect(&temporal, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let handle = client.get_workflow_handle::<DeployWorkflow>("deploy-local");
    let history = handle
        .fetch_history(Default::default())
        .to_json()
        .await
        .unwrap();
    let path = format!("{}/tests/histories/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::write(&path, history).unwrap();
}
