//! Determinism across releases: the histories of real deploys recorded by earlier releases
//! (`tests/histories/RELEASE/*.json`) must replay against today's workflow code. A deploy in
//! flight while the pool upgrades moves to the new build (the deploy workflow is
//! Auto-Upgrade), so a change that would break such a deploy fails here, with no server.
//!
//! - `0.1.0`: before the worker pool was versioned (completed, rejected at the gate, refused at
//!   preflight, rolled back during the bake, aborted during the worker roll).
//! - `0.2.0`: the versioned pool (approved at the gate, failed before the switch, rolled back
//!   after it, an activity retried after its worker was killed).
//! - `0.3.0`: the same four, with the environment resolved by the worker and the migrations
//!   awaited by name (each behind its patch).
//! - `0.4.0`: the same four, with independent work side by side: preflight's reads in one
//!   workflow task, the cron rolled beside the workers (behind the `side-by-side` patch).
//!
//! Each release records its own with `scripts/record-histories.sh RELEASE` on the compose
//! stack; one history is `RECORD_AS=RELEASE/name cargo test -p deployctl-workflows --test
//! replay -- --ignored record`.

use std::path::PathBuf;

use deployctl_workflows::DeployWorkflow;
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

fn histories() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/histories")
}

async fn replay(path: &std::path::Path) -> Result<(), String> {
    let json = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let history = WorkflowHistory::from_json(&json).map_err(|e| format!("{e}"))?;
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<DeployWorkflow>()
        .unwrap()
        .build();
    let replayer = WorkflowReplayer::new(options).unwrap();
    replayer
        .replay_workflow(history)
        .await
        .map_err(|e| format!("{} no longer replays: {e}", path.display()))
}

/// Replays every history of one release; returns the names it replayed.
async fn replay_release(release: &str) -> Vec<String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(histories().join(release))
        .unwrap_or_else(|e| panic!("release {release}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    let mut failures = Vec::new();
    for path in &paths {
        if let Err(error) = replay(path).await {
            failures.push(error);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    paths
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The paths every release since 0.2.0 records.
const PATHS_THAT_MATTER: [&str; 4] = [
    "approved",
    "failed_before_switch",
    "retried_activity",
    "rolled_back",
];

/// The activities scheduled by each workflow task that scheduled any, by type name.
fn scheduled_together(events: &[serde_json::Value]) -> Vec<Vec<String>> {
    let mut groups: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
    for event in events {
        let scheduled = &event["attributes"]["ActivityTaskScheduledEventAttributes"];
        if let (Some(task), Some(name)) = (
            scheduled["workflow_task_completed_event_id"].as_i64(),
            scheduled["activity_type"]["name"].as_str(),
        ) {
            groups.entry(task).or_default().push(name.to_string());
        }
    }
    groups.into_values().collect()
}

/// A recorded history's events, as JSON.
fn events(release: &str, name: &str) -> Vec<serde_json::Value> {
    let path = histories().join(release).join(format!("{name}.json"));
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    value["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn the_histories_of_release_0_1_0_replay() {
    let names = replay_release("0.1.0").await;
    assert_eq!(
        names,
        ["aborted", "completed", "refused", "rejected", "rolled_back"]
    );
}

#[tokio::test]
async fn the_histories_of_release_0_2_0_replay_and_cover_the_paths_that_matter() {
    let names = replay_release("0.2.0").await;
    assert_eq!(names, PATHS_THAT_MATTER);
    // The approve path went through the `approve` Update.
    let approved = events("0.2.0", "approved");
    assert!(
        approved
            .iter()
            .any(|e| e["attributes"]["WorkflowExecutionUpdateAcceptedEventAttributes"].is_object()),
        "the approved history holds no accepted Update"
    );
    // An activity was started a second time after its worker died.
    let retried = events("0.2.0", "retried_activity");
    assert!(
        retried.iter().any(|e| {
            e["attributes"]["ActivityTaskStartedEventAttributes"]["attempt"]
                .as_i64()
                .is_some_and(|attempt| attempt >= 2)
        }),
        "the retried_activity history holds no retried activity"
    );
    // The versioned roll is behind its patch marker.
    assert!(
        approved
            .iter()
            .any(|e| e["attributes"]["MarkerRecordedEventAttributes"].is_object()),
        "the approved history holds no patch marker"
    );
}

#[tokio::test]
async fn the_histories_of_release_0_3_0_replay_with_the_worker_owned_environment() {
    let names = replay_release("0.3.0").await;
    assert_eq!(names.len(), 4, "{names:?}");
    let approved = serde_json::to_string(&events("0.3.0", "approved")).unwrap();
    // Both of this release's changes ran (their activities), each behind its patch marker,
    // beside 0.2.0's worker-deployments marker.
    for present in ["resolve_environment", "list_migrations"] {
        assert!(
            approved.contains(present),
            "the approved history holds no {present}"
        );
    }
    assert_eq!(approved.matches("core_patch").count(), 3, "patch markers");
}

#[tokio::test]
async fn the_histories_of_release_0_4_0_replay_with_independent_work_side_by_side() {
    let names = replay_release("0.4.0").await;
    assert_eq!(names, PATHS_THAT_MATTER);
    let approved = events("0.4.0", "approved");
    let groups = scheduled_together(&approved);
    // Preflight's reads (image, HAProxy, both colours, cron, workers) in one workflow task.
    let reads = groups.iter().map(Vec::len).max().unwrap_or_default();
    assert!(reads >= 6, "preflight read one thing at a time: {groups:?}");
    // The cron's replacement went out with the worker roll's first activity.
    assert!(
        groups.iter().any(|group| {
            group.iter().any(|n| n.ends_with("::replace_container"))
                && group.iter().any(|n| n.ends_with("::start_workers"))
        }),
        "the cron did not roll beside the workers: {groups:?}"
    );
    // Every earlier release's history lacks both: the test tells them apart.
    let earlier = scheduled_together(&events("0.3.0", "approved"));
    assert!(earlier.iter().all(|group| group.len() < 6), "{earlier:?}");
}

/// Not a check: writes the latest `deploy-local` run to `tests/histories/$RECORD_AS.json`.
#[tokio::test]
#[ignore = "records a fixture from a running stack"]
async fn record() {
    let name = std::env::var("RECORD_AS").expect("RECORD_AS names the history: RELEASE/name");
    let temporal = deployctl_worker::TemporalArgs::default();
    let client = deployctl_worker::connect(&temporal, std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let handle = client.get_workflow_handle::<DeployWorkflow>("deploy-local");
    let history = handle
        .fetch_history(Default::default())
        .to_json()
        .await
        .unwrap();
    let path = histories().join(format!("{name}.json"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, history).unwrap();
}
