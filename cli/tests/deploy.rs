//! End-to-end: `deployctl` against the real compose stack (Temporal, Docker, Postgres,
//! HAProxy), the way an operator uses it. Tests take turns on the one stack; only the first
//! scenario needs a fresh stack, the others start from whatever the last deploy left.

mod support;

use std::time::{Duration, Instant, SystemTime};

use deployctl_proto::v1::{Colour, Phase, StepState};
use deployctl_workflows::plan::{APPROVAL, ROLL_CRON, ROLL_WORKERS, STEPS};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn v1_to_v2_end_to_end_under_load() {
    let _turn = exclusive();
    fresh_stack_on_v1().await;
    assert_eq!(live_servers().await, ["blue"]);
    assert_eq!(served_version().await, "v1");
    let workers = service_images("ecomweb_worker").await;
    assert_eq!(workers.len(), 2, "{workers:?}");
    assert!(
        workers
            .iter()
            .all(|(_, image, _)| image == "ecomweb-api:v1")
    );

    let wall = SystemTime::now();
    let monotonic = Instant::now();
    let load = load::Load::start(FRONTEND, 16, true, DEPLOY_LIMIT);
    let started = Instant::now();
    let output = deploy("v2").await;
    let deploy_time = started.elapsed();
    let report = load.finish().await;
    assert!(output.status.success(), "{}", text(&output));

    // Green runs v2 and is the only server HAProxy sends traffic to.
    assert_eq!(live_servers().await, ["green"]);
    assert_eq!(
        container_image("ecomweb_api_green").await,
        Some(("ecomweb-api:v2".into(), true))
    );
    assert_eq!(served_version().await, "v2");
    // v2's migration is finished.
    let pool = database().await;
    assert_eq!(
        finished_migrations(&pool).await,
        ["0001_init", "0002_order_notes"]
    );
    // One cron at every moment: the old one and the new one both ran, never together.
    assert_eq!(overlapping_cron_runs(&pool).await, 0);
    assert!(
        cron_containers_seen(&pool).await >= 2,
        "the cron was not rolled"
    );
    assert_eq!(
        container_image("ecomweb_cron").await,
        Some(("ecomweb-api:v2".into(), true))
    );
    // Every worker runs v2, as many as before.
    let workers = service_images("ecomweb_worker").await;
    assert_eq!(workers.len(), 2, "{workers:?}");
    assert!(
        workers
            .iter()
            .all(|(_, image, running)| image == "ecomweb-api:v2" && *running),
        "{workers:?}"
    );
    // Blue was updated to v2 too, and stays out of rotation.
    assert_eq!(
        container_image("ecomweb_api_blue").await,
        Some(("ecomweb-api:v2".into(), true))
    );
    // Temporal says Completed; the status lists the runbook's steps, run in order (the worker
    // roll starts with the cron's: they run side by side).
    assert_eq!(
        temporal_status("deploy-local"),
        "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    );
    let status = status();
    assert_eq!(status.phase, Phase::Completed as i32);
    let names: Vec<&str> = status.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, STEPS);
    let mut previous = String::new();
    for step in &status.steps {
        let expected = if step.name == APPROVAL {
            StepState::Skipped
        } else {
            StepState::Done
        };
        assert_eq!(step.state, expected as i32, "{step:?}");
        assert!(
            step.started_at >= previous,
            "{} started before the step before it",
            step.name
        );
        previous = match step.name.as_str() {
            // The worker roll starts with the cron's, in the same workflow task.
            ROLL_CRON => {
                let workers = self::step(&status, ROLL_WORKERS);
                assert_eq!(workers.started_at, step.started_at, "side by side");
                step.started_at.clone()
            }
            // The bake waits for both.
            ROLL_WORKERS => step
                .finished_at
                .clone()
                .max(self::step(&status, ROLL_CRON).finished_at.clone()),
            _ => step.finished_at.clone(),
        };
    }

    // Zero failed requests during the whole deploy.
    let switch = step(&status, deployctl_workflows::plan::SWITCH_TRAFFIC);
    let switch_from = instant_of(&switch.started_at, wall, monotonic);
    let switch_to = instant_of(&switch.finished_at, wall, monotonic);
    let whole = report.figures();
    let during_switch = report.window(switch_from, switch_to);
    let steady = report.outside(switch_from, switch_to);
    println!("deploy wall time: {:.1} s", deploy_time.as_secs_f64());
    for name in STEPS {
        let s = step(&status, name);
        println!("  step {name:<18} {} → {}", s.started_at, s.finished_at);
    }
    println!("load, whole deploy: {whole}");
    println!("load, during the switch: {during_switch}");
    println!("load, steady state:     {steady}");
    assert!(whole.requests > 100, "the load hardly ran: {whole}");
    assert_eq!(
        whole.non_2xx + whole.socket_errors,
        0,
        "failed requests: {whole}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approval_gate_holds_traffic_until_approved() {
    let _turn = exclusive();
    settled_stack().await;
    let target = other_version().await;
    let live_before = live_servers().await;

    let output = deployctl(&["start", "--version", target, "--approve-before-switch"]);
    assert!(output.status.success(), "{}", text(&output));
    let held = await_phase(&[Phase::AwaitingApproval]).await;
    assert_eq!(held.gate.as_ref().map(|g| g.name.as_str()), Some(APPROVAL));
    let status_text = text(&deployctl(&["status"]));
    assert!(status_text.contains("awaiting approval"), "{status_text}");
    // Held: HAProxy still routes to the old colour only.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(live_servers().await, live_before);
    assert_ne!(served_version().await, target);

    let output = deployctl(&["approve", "--comment", "looks good", "--by", "tester"]);
    assert!(output.status.success(), "{}", text(&output));
    let done = await_phase(&[Phase::Completed, Phase::Failed]).await;
    assert_eq!(done.phase, Phase::Completed as i32, "{done:?}");
    assert_eq!(done.approval.as_ref().unwrap().approved_by, "tester");
    assert_eq!(served_version().await, target);
    assert_ne!(live_servers().await, live_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejection_leaves_traffic_on_the_old_colour_and_stops_the_new_one() {
    let _turn = exclusive();
    settled_stack().await;
    let target = other_version().await;
    let served_before = served_version().await;
    let live_before = live_servers().await;

    let output = deployctl(&["start", "--version", target, "--approve-before-switch"]);
    assert!(output.status.success(), "{}", text(&output));
    let held = await_phase(&[Phase::AwaitingApproval]).await;
    let new_colour = if held.target_colour == Colour::Green as i32 {
        "ecomweb_api_green"
    } else {
        "ecomweb_api_blue"
    };

    // A second deploy while one is running is refused, and changes nothing.
    let second = deployctl(&["start", "--version", target]);
    assert_eq!(second.status.code(), Some(2), "{}", text(&second));
    assert!(
        text(&second).contains("already running"),
        "{}",
        text(&second)
    );

    let output = deployctl(&["reject", "--reason", "not today", "--by", "tester"]);
    assert!(output.status.success(), "{}", text(&output));
    let done = await_phase(&[Phase::Rejected, Phase::Completed, Phase::Failed]).await;
    assert_eq!(done.phase, Phase::Rejected as i32, "{done:?}");
    assert_eq!(done.rejection.as_ref().unwrap().reason, "not today");
    assert_eq!(live_servers().await, live_before);
    assert_eq!(served_version().await, served_before);
    let (_, running) = container_image(new_colour).await.unwrap();
    assert!(!running, "{new_colour} still runs after the rejection");
    assert_eq!(
        temporal_status("deploy-local"),
        "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn next_deploy_targets_the_other_colour() {
    let _turn = exclusive();
    settled_stack().await;
    let first_version = other_version().await;
    let output = deploy(first_version).await;
    assert!(output.status.success(), "{}", text(&output));
    let first = status();
    let second_version = other_version().await;
    assert_ne!(first_version, second_version);
    let output = deploy(second_version).await;
    assert!(output.status.success(), "{}", text(&output));
    let second = status();
    assert_ne!(first.target_colour, second.target_colour);
    assert_eq!(second.live_colour, first.target_colour);
    let expected_live = if second.target_colour == Colour::Green as i32 {
        "green"
    } else {
        "blue"
    };
    assert_eq!(live_servers().await, [expected_live]);
}

/// Everything an unwanted deploy could have changed.
async fn snapshot() -> (
    Vec<(String, String, bool)>,
    Vec<(String, u32, u32, String)>,
    Vec<String>,
) {
    let docker = docker().await;
    let mut containers: Vec<(String, String, bool)> = project_containers(&docker)
        .await
        .into_iter()
        .map(|(name, image, status)| (name, image, status.starts_with("Up")))
        .collect();
    containers.sort();
    let servers = api_servers()
        .await
        .into_iter()
        .map(|s| (s.name, s.op_state, s.admin_state, s.address))
        .collect();
    let pool = database().await;
    let mut tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    tables.extend(finished_migrations(&pool).await);
    (containers, servers, tables)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_refused_before_anything_changes() {
    let _turn = exclusive();
    settled_stack().await;
    let before = snapshot().await;

    let unknown = deployctl(&["start", "--version", "v9", "--wait"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    let message = text(&unknown);
    assert!(message.contains("no image ecomweb-api:v9"), "{message}");
    assert_eq!(
        message.matches("error:").count(),
        1,
        "one clear error: {message}"
    );

    let malformed = deployctl(&["start", "--version", "v2 beta!"]);
    assert_eq!(malformed.status.code(), Some(2), "{}", text(&malformed));
    assert!(
        text(&malformed).contains("malformed version"),
        "{}",
        text(&malformed)
    );

    let nowhere = deployctl(&["start", "--version", "v2", "--env", "nowhere"]);
    assert_eq!(nowhere.status.code(), Some(2), "{}", text(&nowhere));
    assert!(
        text(&nowhere).contains("unknown environment \"nowhere\""),
        "{}",
        text(&nowhere)
    );

    assert_eq!(snapshot().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approval_by_a_plain_json_signal_as_the_web_ui_sends_it() {
    let _turn = exclusive();
    settled_stack().await;
    let target = other_version().await;
    let output = deployctl(&["start", "--version", target, "--approve-before-switch"]);
    assert!(output.status.success(), "{}", text(&output));
    await_phase(&[Phase::AwaitingApproval]).await;

    // What the Web UI's signal button sends: the signal name and a JSON payload.
    compose(&[
        "exec",
        "-T",
        "temporal",
        "/temporal",
        "workflow",
        "signal",
        "--workflow-id",
        "deploy-local",
        "--name",
        "approve",
        "--input",
        r#"{"approved_by": "web-ui", "comment": "from the UI"}"#,
        "--address",
        "127.0.0.1:7233",
    ]);
    let done = await_phase(&[Phase::Completed, Phase::Failed]).await;
    assert_eq!(done.phase, Phase::Completed as i32, "{done:?}");
    let approval = done.approval.unwrap();
    assert_eq!(
        (approval.approved_by.as_str(), approval.comment.as_str()),
        ("web-ui", "from the UI")
    );
    assert_eq!(served_version().await, target);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_migration_stops_the_deploy_with_traffic_on_the_live_colour() {
    let _turn = exclusive();
    settled_stack().await;
    let served_before = served_version().await;
    let live_before = live_servers().await;

    let output = deploy("broken").await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("migration 0003_broken failed"),
        "{}",
        text(&output)
    );
    let status = status();
    assert_eq!(status.phase, Phase::Failed as i32);
    let new_colour = if status.target_colour == Colour::Green as i32 {
        "ecomweb_api_green"
    } else {
        "ecomweb_api_blue"
    };
    assert_eq!(
        temporal_status("deploy-local"),
        "WORKFLOW_EXECUTION_STATUS_FAILED"
    );
    // Traffic never moved, and the broken colour was stopped.
    assert_eq!(live_servers().await, live_before);
    assert_eq!(served_version().await, served_before);
    let (_, running) = container_image(new_colour).await.unwrap();
    assert!(!running, "{new_colour} still runs after the failed deploy");

    // The operator resolves it as Prisma would (`migrate resolve --rolled-back`); deploys go on.
    let pool = database().await;
    sqlx::query("UPDATE _prisma_migrations SET rolled_back_at = now() WHERE finished_at IS NULL")
        .execute(&pool)
        .await
        .unwrap();
    let output = deploy(other_version().await).await;
    assert!(output.status.success(), "{}", text(&output));
}
