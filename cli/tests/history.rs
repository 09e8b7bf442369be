//! `deployctl history`: three deploys in a row (approved, rejected, plain) come back from
//! Temporal's visibility newest first, each with its versions, outcome, who started it and who
//! answered its gate; the search attributes the Web UI filters on are set; and the approval
//! step names its approver in the status.

mod support;

use std::time::{Duration, Instant};

use deployctl_proto::v1::Phase;
use support::*;

fn history(limit: &str) -> serde_json::Value {
    let output = deployctl(&["history", "--limit", limit, "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", text(&output)))
}

/// Visibility follows the runs a moment later: the newest `count` deploys once all have ended.
async fn ended_deploys(count: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let deploys = history(&count.to_string())["deploys"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if deploys.len() == count
            && deploys
                .iter()
                .all(|d| d["ended_at"] != "" && d["outcome"] != "running")
        {
            return deploys;
        }
        assert!(
            Instant::now() < deadline,
            "visibility never showed {count} ended deploys: {deploys:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn gated(version: &str) {
    let started = deployctl(&["start", "--version", version, "--approve-before-switch"]);
    assert!(started.status.success(), "{}", text(&started));
    await_phase(&[Phase::AwaitingApproval]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_shows_three_deploys_with_their_outcomes_and_who_answered_the_gate() {
    let _turn = exclusive();
    settled_stack().await;
    let first = served_version().await;
    let second = other_version().await.to_string();

    // 1: approved at the gate.
    gated(&second).await;
    let approved = deployctl(&["approve", "--by", "alice", "--comment", "looks good"]);
    assert!(approved.status.success(), "{}", text(&approved));
    let ended = await_phase(&FINAL_PHASES).await;
    assert_eq!(ended.phase, Phase::Completed as i32);
    assert_eq!(
        step(&ended, "approval").detail,
        "approved by alice: looks good"
    );
    // 2: rejected at the gate.
    gated(&first).await;
    let rejected = deployctl(&["reject", "--by", "bob", "--reason", "not today"]);
    assert!(rejected.status.success(), "{}", text(&rejected));
    assert_eq!(
        await_phase(&FINAL_PHASES).await.phase,
        Phase::Rejected as i32
    );
    // 3: no gate.
    let plain = deploy(&first).await;
    assert!(plain.status.success(), "{}", text(&plain));

    let deploys = ended_deploys(3).await;
    let requested_by = std::env::var("USER").unwrap_or_else(|_| "deployctl".into());
    let expected = [
        (first.as_str(), second.as_str(), "completed"),
        (first.as_str(), second.as_str(), "rejected"),
        (second.as_str(), first.as_str(), "completed"),
    ];
    for (deploy, (version, from, outcome)) in deploys.iter().zip(expected) {
        assert_eq!(deploy["version"], version, "{deploy}");
        assert_eq!(deploy["from_version"], from, "{deploy}");
        assert_eq!(deploy["outcome"], outcome, "{deploy}");
        assert_eq!(deploy["requested_by"], requested_by.as_str(), "{deploy}");
        assert_eq!(deploy["workflow_id"], "deploy-local", "{deploy}");
        assert!(
            deploy["seconds"].as_f64().is_some_and(|s| s > 0.0),
            "{deploy}"
        );
    }
    assert!(deploys[0].get("approval").is_none(), "{}", deploys[0]);
    assert_eq!(deploys[1]["rejection"]["rejected_by"], "bob");
    assert_eq!(deploys[1]["rejection"]["reason"], "not today");
    assert_eq!(deploys[2]["approval"]["approved_by"], "alice");
    assert_eq!(deploys[2]["approval"]["comment"], "looks good");
    let runs: std::collections::HashSet<_> = deploys.iter().map(|d| d["run_id"].clone()).collect();
    assert_eq!(runs.len(), 3, "each deploy its own run");

    // The table a person reads, and the attributes the Web UI's list filters on.
    let table = deployctl(&["history", "--limit", "3"]);
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[2].contains(&format!("{second} → {first}")) && lines[2].contains("rejected"));
    assert!(lines[2].ends_with("rejected by bob: not today"), "{table}");
    assert!(
        lines[3].contains("approved by alice: looks good"),
        "{table}"
    );
    let rejected = temporal_json(&[
        "workflow",
        "count",
        "--query",
        &format!(
            "DeployEnv = 'local' AND DeployVersion = '{first}' AND DeployOutcome = 'rejected'"
        ),
    ]);
    // proto3 JSON spells an int64 as a string.
    let count = &rejected["count"];
    let count = count.as_u64().or_else(|| count.as_str()?.parse().ok());
    assert!(count >= Some(1), "{rejected}");
}
