//! Scripting `deployctl`: with `--json` every command prints one JSON document on stdout, and
//! the exit code tells the outcomes apart (the README's table): refused before any change,
//! Temporal out of reach, rejected, and the status of a deploy that ended.

mod support;

use std::{process::Output, time::Duration};

use deployctl_proto::v1::Phase;
use deployctl_workflows::DeployWorkflow;
use support::*;

/// stdout as one JSON document; anything else fails the test.
fn document(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("not one JSON document ({error}): {}", text(output)))
}

fn assert_refused(output: &Output, says: &str) {
    assert_eq!(output.status.code(), Some(2), "{}", text(output));
    let error = document(output);
    assert_eq!(error["exit_code"], 2, "{error}");
    let words = error["error"].as_str().unwrap_or_default();
    assert!(words.contains(says), "{says:?} not in {words:?}");
}

#[test]
fn temporal_out_of_reach_exits_6_not_2() {
    let output = deployctl(&["--address", "127.0.0.1:1", "status", "--json"]);
    assert_eq!(output.status.code(), Some(6), "{}", text(&output));
    let error = document(&output);
    assert_eq!(error["exit_code"], 6);
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|words| words.contains("could not reach Temporal")),
        "{error}"
    );
}

#[test]
fn the_temporal_clis_profiles_are_read_and_flags_win_over_them() {
    let file = std::env::temp_dir().join(format!("deployctl-profiles-{}.toml", std::process::id()));
    std::fs::write(&file, "[profile.nowhere]\naddress = \"127.0.0.1:1\"\n").unwrap();
    let run = |arguments: &[&str], profile_variable: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_deployctl"));
        command
            .args(["status", "--json", "--config-file"])
            .arg(&file)
            .args(arguments)
            .env_remove("TEMPORAL_ADDRESS")
            .env_remove("TEMPORAL_PROFILE");
        if let Some(profile) = profile_variable {
            command.env("TEMPORAL_PROFILE", profile);
        }
        let output = command.output().unwrap();
        let error = document(&output)["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (output.status.code(), error)
    };
    // The profile's address, by flag and by variable: nothing answers there.
    for (arguments, variable) in [
        (&["--profile", "nowhere"][..], None),
        (&[][..], Some("nowhere")),
    ] {
        let (code, error) = run(arguments, variable);
        assert_eq!(code, Some(6), "{error}");
        assert!(error.contains("127.0.0.1:1"), "{error}");
    }
    // A flag wins over the profile.
    let (code, error) = run(&["--profile", "nowhere", "--address", "127.0.0.1:2"], None);
    assert_eq!(code, Some(6), "{error}");
    assert!(error.contains("127.0.0.1:2"), "{error}");
    // A profile the file does not have is refused by name, before any connection.
    let (code, error) = run(&["--profile", "prod"], None);
    assert_eq!(code, Some(2), "{error}");
    assert!(error.contains("prod"), "{error}");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn bad_input_is_refused_with_2_and_a_json_error() {
    assert_refused(
        &deployctl(&["start", "--version", "v2:latest", "--json"]),
        "v2:latest",
    );
    assert_refused(
        &deployctl(&["--env", "nowhere", "status", "--json"]),
        "nowhere",
    );
}

#[test]
fn completions_name_every_command() {
    let bash = deployctl(&["completions", "bash"]);
    assert!(bash.status.success(), "{}", text(&bash));
    let script = String::from_utf8_lossy(&bash.stdout);
    for command in [
        "start", "status", "approve", "reject", "rollback", "abort", "config", "queue",
    ] {
        assert!(
            script.contains(command),
            "{command} missing from the bash script"
        );
    }
    let zsh = document(&deployctl(&["completions", "zsh", "--json"]));
    assert_eq!(zsh["shell"], "zsh");
    assert!(
        zsh["script"]
            .as_str()
            .is_some_and(|s| s.contains("#compdef deployctl"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_command_prints_json_and_the_outcome_sets_the_exit_code() {
    let _turn = exclusive();
    settled_stack().await;
    let target = other_version().await;
    let served = served_version().await;
    let live = live_servers().await;

    // `config`: the report, and an exit code that agrees with it. (An idle colour a rejected
    // deploy stopped is a problem it names, so either may come here.)
    let checked = deployctl(&["config", "--json"]);
    let report = document(&checked);
    let problems = report["problems"].as_array().expect("a list of problems");
    assert!(
        report["matches"].as_array().is_some_and(|m| !m.is_empty()),
        "{report}"
    );
    let expected = if problems.is_empty() { 0 } else { 2 };
    assert_eq!(checked.status.code(), Some(expected), "{}", text(&checked));

    // `start` names the workflow and links it in the Web UI the flag names.
    let started = deployctl(&[
        "start",
        "--version",
        target,
        "--approve-before-switch",
        "--json",
        "--ui-address",
        "http://ui.test:8080/",
    ]);
    assert_eq!(started.status.code(), Some(0), "{}", text(&started));
    let started = document(&started);
    assert_eq!(started["workflow_id"], "deploy-local");
    assert_eq!(
        started["web_ui"],
        "http://ui.test:8080/namespaces/default/workflows/deploy-local"
    );
    assert_eq!(started["status"]["version"], target);
    await_phase(&[Phase::AwaitingApproval]).await;

    // The Web UI's view of the run: its summary and details, and the plan in its memo.
    let temporal = deployctl_worker::TemporalArgs::default();
    let client = deployctl_worker::connect(&temporal, Duration::from_secs(5))
        .await
        .unwrap();
    let run = client
        .get_workflow_handle::<DeployWorkflow>("deploy-local")
        .describe(Default::default())
        .await
        .unwrap();
    let summary = run.static_summary().unwrap_or_default();
    assert!(
        [
            format!("deploy local {served} → {target}"),
            format!("deploy local → {target}")
        ]
        .contains(&summary.to_string()),
        "summary {summary:?} (serving {served})"
    );
    let details = run.static_details().unwrap_or_default();
    assert!(
        details.contains("Approval gate before the switch"),
        "{details}"
    );
    let plan: serde_json::Value = run.memo().get("plan").unwrap().expect("a plan in the memo");
    assert_eq!(plan["image"], format!("ecomweb-api:{target}"), "{plan}");
    assert_eq!(plan["live_colour"], live[0], "{plan}");
    assert_ne!(plan["target_colour"], live[0], "{plan}");

    // Running: `status` exits 0 and prints the status itself.
    let waiting = deployctl(&["status", "--json"]);
    assert_eq!(waiting.status.code(), Some(0), "{}", text(&waiting));
    assert_eq!(document(&waiting)["phase"], "PHASE_AWAITING_APPROVAL");
    assert_refused(&deployctl(&["rollback", "--json"]), "needs it baking");

    let rejected = deployctl(&["reject", "--reason", "scripted", "--json"]);
    assert_eq!(rejected.status.code(), Some(0), "{}", text(&rejected));
    assert!(
        document(&rejected)["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("rejected")),
        "{}",
        text(&rejected)
    );
    assert_eq!(
        await_phase(&FINAL_PHASES).await.phase,
        Phase::Rejected as i32
    );

    // Ended: `status` exits with the outcome's code; nothing waits to be approved or aborted.
    let ended = deployctl(&["status", "--json"]);
    assert_eq!(ended.status.code(), Some(3), "{}", text(&ended));
    assert_eq!(
        read_status(&ended).map(|s| s.phase),
        Some(Phase::Rejected as i32)
    );
    assert_refused(&deployctl(&["approve", "--json"]), "refused");
    assert_refused(
        &deployctl(&["abort", "--reason", "scripted", "--json"]),
        "nothing to abort",
    );
}
