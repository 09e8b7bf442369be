//! The fault matrix: every crash, bad input or bad release ends on a healthy colour.
//!
//! Each row runs a deploy under load through HAProxy, injects its fault, and then checks the
//! same things: the deploy completed or returned to the last good state, no request failed,
//! no container is missing or left aside, `docker compose up -d` changes nothing that serves
//! traffic, and `deployctl status` says what happened. Each row sets up the state it needs
//! and waits on conditions, never on fixed sleeps.

mod support;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use deployctl_proto::v1::{DeployStatus, Phase, StepState};
use deployctl_workflows::plan::*;
use support::*;

fn docker_cli(arguments: &[&str]) {
    let output = Command::new("docker").args(arguments).output().unwrap();
    assert!(
        output.status.success(),
        "docker {arguments:?}: {}",
        text(&output)
    );
}

/// Polls the status until `ready` holds; the deploy must not end first.
async fn wait_for(what: &str, ready: impl Fn(&DeployStatus) -> bool) -> DeployStatus {
    let deadline = Instant::now() + DEPLOY_LIMIT;
    loop {
        if let Some(status) = read_status(&deployctl(&["status", "--json"])) {
            if ready(&status) {
                return status;
            }
            assert!(
                !FINAL_PHASES.iter().any(|p| *p as i32 == status.phase),
                "the deploy ended before {what}: {status:?}"
            );
        }
        assert!(Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the status is of a run that has not ended and satisfies `this`.
async fn wait_for_new_run(this: impl Fn(&DeployStatus) -> bool) {
    let deadline = Instant::now() + DEPLOY_LIMIT;
    loop {
        if let Some(status) = read_status(&deployctl(&["status", "--json"])) {
            if this(&status) && !FINAL_PHASES.iter().any(|p| *p as i32 == status.phase) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the new deploy never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn running(step_name: &'static str) -> impl Fn(&DeployStatus) -> bool {
    move |status| {
        status
            .steps
            .iter()
            .any(|s| s.name == step_name && s.state == StepState::Running as i32)
    }
}

fn in_phase(phase: Phase) -> impl Fn(&DeployStatus) -> bool {
    move |status| status.phase == phase as i32
}

/// The gate has its approval: the switch is starting or running. A switch is too short to
/// catch by polling, so the rows that act during one hold the deploy at the gate, approve,
/// and act as soon as the approval shows.
fn switch_in_flight() -> impl Fn(&DeployStatus) -> bool {
    |status| status.approval.is_some()
}

/// The steps running at `status`: where a row's act landed (printed, as the switch is short).
fn running_steps(status: &DeployStatus) -> Vec<&str> {
    status
        .steps
        .iter()
        .filter(|s| s.state == StepState::Running as i32)
        .map(|s| s.name.as_str())
        .collect()
}

/// Holds the deploy at the gate until `reached`: approves it if `reached` lies beyond the gate.
async fn hold_until(row: &str, reached: impl Fn(&DeployStatus) -> bool) -> DeployStatus {
    let gate = wait_for(row, |s| {
        reached(s) || s.phase == Phase::AwaitingApproval as i32
    })
    .await;
    if reached(&gate) {
        return gate;
    }
    deployctl(&["approve", "--by", "tester"]);
    let at = wait_for(row, &reached).await;
    println!("{row}: acting while {:?} run", running_steps(&at));
    at
}

/// Starts a deploy in the background (`start` returns once preflight passed).
fn start(arguments: &[&str]) {
    let mut all = vec!["start"];
    all.extend_from_slice(arguments);
    let output = deployctl(&all);
    assert!(output.status.success(), "{}", text(&output));
}

/// The checks every row ends with. `served` is the version the frontend must serve.
async fn assert_settled(served: &str) {
    // Exactly one colour carries traffic, and it serves the expected version.
    let live = live_servers().await;
    assert_eq!(live.len(), 1, "HAProxy routes to {live:?}");
    assert_eq!(served_version().await, served);
    // No container is missing or left aside; cron and workers run one image.
    let docker = docker().await;
    let containers = project_containers(&docker).await;
    assert!(
        !containers
            .iter()
            .any(|(name, _, _)| name.contains("deployctl-old")),
        "a container was left aside: {containers:?}"
    );
    for name in ["ecomweb_api_blue", "ecomweb_api_green", "ecomweb_cron"] {
        assert!(container_image(name).await.is_some(), "{name} is missing");
    }
    let live_container = format!("ecomweb_api_{}", live[0]);
    assert!(
        container_image(&live_container).await.unwrap().1,
        "{live_container} is not running"
    );
    let (cron_image, cron_running) = container_image("ecomweb_cron").await.unwrap();
    assert!(cron_running);
    let workers = service_images("ecomweb_worker").await;
    assert_eq!(workers.len(), 2, "{workers:?}");
    assert!(
        workers
            .iter()
            .all(|(_, image, running)| *running && *image == cron_image),
        "workers {workers:?}, cron {cron_image}"
    );
    let pool = database().await;
    assert_eq!(
        overlapping_cron_runs(&pool).await,
        0,
        "two crons ran at once"
    );

    // `docker compose up -d` changes nothing that serves traffic.
    let serving = |ids: &Vec<(String, String)>| -> Vec<(String, String)> {
        ids.iter()
            .filter(|(name, _)| {
                *name == live_container || name.contains("cron") || name.contains("ecomweb_worker")
            })
            .cloned()
            .collect()
    };
    let before = serving(&container_ids(&docker).await);
    compose(&["up", "-d"]);
    wait_until_healthy().await;
    assert_eq!(
        serving(&container_ids(&docker).await),
        before,
        "compose up -d recreated something"
    );
    assert_eq!(live_servers().await, live);
    assert_eq!(served_version().await, served);
}

fn assert_no_failed_requests(report: &load::Report, row: &str) {
    let figures = report.figures();
    println!("{row}: load {figures}");
    assert!(
        figures.requests > 50,
        "{row}: the load hardly ran: {figures}"
    );
    assert_eq!(
        figures.non_2xx + figures.socket_errors,
        0,
        "{row}: failed requests: {figures}"
    );
}

/// Row 1: the pool member running the deploy is killed (SIGKILL) in a step, then started
/// again. The deploy completes, with 0 failed requests.
async fn worker_killed_during(row: &str, reached: impl Fn(&DeployStatus) -> bool) {
    let _turn = exclusive();
    settled_stack().await;
    let target = other_version().await;
    let load = load::Load::start(FRONTEND, 8, true, DEPLOY_LIMIT);
    start(&[
        "--version",
        target,
        "--approve-before-switch",
        "--bake-seconds",
        "6",
    ]);
    let killed_at = hold_until(row, &reached).await;
    // The pool member running the deploy, killed and started again (unless the deploy has
    // removed it meanwhile, as it does with old workers).
    let worker = worker_running_the_deploy();
    println!("{row}: killing pool member {worker}");
    docker_cli(&["kill", "--signal", "KILL", &worker]);
    let replaced = Instant::now();
    let _ = Command::new("docker").args(["start", &worker]).output();
    if killed_at.phase == Phase::AwaitingApproval as i32 {
        deployctl(&["approve", "--by", "tester"]);
    }
    // Resumed: a step moved on since the kill.
    let progress = |s: &DeployStatus| -> Vec<(i32, String)> {
        s.steps
            .iter()
            .map(|step| (step.state, step.finished_at.clone()))
            .collect()
    };
    let before = progress(&killed_at);
    wait_for(row, |s| progress(s) != before).await;
    println!(
        "{row}: the deploy moved on {:.1} s after the worker was replaced",
        replaced.elapsed().as_secs_f64()
    );
    let done = await_phase(&FINAL_PHASES).await;
    println!(
        "{row}: deploy ended {:.1} s after the worker was replaced",
        replaced.elapsed().as_secs_f64()
    );
    let report = load.finish().await;
    assert_eq!(done.phase, Phase::Completed as i32, "{row}: {done:?}");
    assert_no_failed_requests(&report, row);
    assert_settled(target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_1_worker_killed_at_the_gate() {
    worker_killed_during("killed at the gate", in_phase(Phase::AwaitingApproval)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_1_worker_killed_during_the_switch() {
    worker_killed_during("killed during the switch", switch_in_flight()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_1_worker_killed_rolling_cron() {
    worker_killed_during("killed rolling cron", running(ROLL_CRON)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_1_worker_killed_rolling_workers() {
    worker_killed_during("killed rolling workers", running(ROLL_WORKERS)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_1_worker_killed_during_the_bake() {
    worker_killed_during("killed during the bake", in_phase(Phase::Baking)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_1_worker_killed_updating_the_old_colour() {
    worker_killed_during("killed updating the old colour", running(UPDATE_OLD_COLOUR)).await;
}

/// Row 1, the steps too short to catch from outside: a failpoint kills the worker between
/// two effects (the process aborts, as a SIGKILL would end it), and the restarted worker
/// retries the activity from whatever it finds.
async fn worker_crashes_at(failpoint: &str) {
    let _turn = exclusive();
    settled_stack().await;
    pool_with_failpoints(&format!("{failpoint}=return")).await;
    let deaths = DeathWatch::start();
    let target = other_version().await;
    let load = load::Load::start(FRONTEND, 8, true, DEPLOY_LIMIT);
    let output = deploy(target).await;
    let report = load.finish().await;
    // Recreating the pool stops its 2 members: once those deaths are seen, so are the ones
    // before them.
    let seen = deaths.deaths().len();
    pool_with_failpoints("").await;
    deaths.await_deaths(seen + 2);
    let crashes = deaths.crashes();
    assert!(output.status.success(), "{failpoint}: {}", text(&output));
    // Each pool member that reaches the crash point dies there once (new workers too).
    println!("{failpoint}: {crashes} pool member(s) died there and the deploy went on");
    assert!(
        crashes >= 1,
        "the crash point {failpoint} never fired: {:?}",
        deaths.deaths()
    );
    assert_no_failed_requests(&report, failpoint);
    assert_settled(target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_1_worker_crashes_starting_the_new_colour_between_remove_and_create() {
    worker_crashes_at("replace-after-rename").await;
}

/// A container created but not yet on all its networks (the engine takes one at create) is
/// made again on the retry, not started as is: a worker started without the Docker API's
/// network could never reach Docker, and never be healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_1_worker_crashes_between_create_and_joining_networks() {
    worker_crashes_at("create-before-networks").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_1_worker_crashes_awaiting_migrations() {
    worker_crashes_at("await-migrations").await;
}

/// Row 2: the Temporal server is killed (SIGKILL) mid-switch and started again; its database
/// persists, and the deploy goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_2_temporal_killed_mid_switch() {
    let _turn = exclusive();
    settled_stack().await;
    let target = other_version().await.to_string();
    let load = load::Load::start(FRONTEND, 8, true, DEPLOY_LIMIT);
    let waiting = {
        let target = target.clone();
        tokio::task::spawn_blocking(move || {
            deployctl(&[
                "start",
                "--version",
                &target,
                "--approve-before-switch",
                "--wait",
            ])
        })
    };
    // The last run's status answers until this deploy's own has started.
    let target_running = target.clone();
    wait_for_new_run(move |s| s.version == target_running).await;
    hold_until("temporal killed", switch_in_flight()).await;
    docker_cli(&["kill", "--signal", "KILL", "deployctl_temporal_1"]);
    docker_cli(&["start", "deployctl_temporal_1"]);
    let output = waiting.await.unwrap();
    let report = load.finish().await;
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(status().phase, Phase::Completed as i32);
    assert_no_failed_requests(&report, "temporal killed");
    assert_settled(&target).await;
}

/// Row 3: HAProxy is reloaded mid-deploy (during the bake); the server state survives, so
/// traffic stays on the new colour and the old one stays warm.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_3_haproxy_restarted_mid_deploy_keeps_its_server_state() {
    let _turn = exclusive();
    settled_stack().await;
    let target = other_version().await;
    start(&["--version", target, "--bake-seconds", "8"]);
    wait_for("the bake", in_phase(Phase::Baking)).await;
    let live_before = live_servers().await;
    compose(&["restart", "--timeout", "5", "haproxy"]);
    wait_until_healthy().await;
    assert_eq!(
        live_servers().await,
        live_before,
        "HAProxy forgot the switch"
    );
    let done = await_phase(&FINAL_PHASES).await;
    assert_eq!(done.phase, Phase::Completed as i32, "{done:?}");
    assert_settled(target).await;
}

/// Row 4: Postgres stops while the migrations are awaited, then starts again; the deploy
/// waits for it and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_4_postgres_stopped_while_migrations_are_awaited() {
    let _turn = exclusive();
    settled_stack().await;
    pool_with_failpoints("").await;
    let target = other_version().await;
    compose(&["stop", "--timeout", "5", "postgres"]);
    start(&["--version", target]);
    wait_for("the migration wait", |s| {
        running(AWAIT_MIGRATIONS)(s) || running(AWAIT_HEALTH)(s)
    })
    .await;
    compose(&["start", "postgres"]);
    let done = await_phase(&FINAL_PHASES).await;
    assert_eq!(done.phase, Phase::Completed as i32, "{done:?}");
    assert_settled(target).await;
}

/// Rows 5 and 6: a release that never becomes healthy, and one whose migration fails. The
/// deploy fails, names the cause, traffic never moves, and the new colour is stopped.
async fn bad_release(version: &str, cause: &str) {
    let _turn = exclusive();
    settled_stack().await;
    let served_before = served_version().await;
    let live_before = live_servers().await;
    let load = load::Load::start(FRONTEND, 8, true, DEPLOY_LIMIT);
    let output = deploy(version).await;
    let report = load.finish().await;
    resolve_failed_migrations().await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains(cause), "{}", text(&output));
    let status = status();
    assert_eq!(status.phase, Phase::Failed as i32);
    assert!(!status.failed_step.is_empty());
    assert!(
        status
            .compensation
            .iter()
            .any(|line| line.contains("stopped")),
        "{:?}",
        status.compensation
    );
    assert_eq!(
        temporal_status("deploy-local"),
        "WORKFLOW_EXECUTION_STATUS_FAILED"
    );
    assert_eq!(live_servers().await, live_before);
    assert_no_failed_requests(&report, version);
    assert_settled(&served_before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_5_a_new_colour_that_never_becomes_healthy() {
    bad_release("sick", "unhealthy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_6_a_failed_migration_is_named_and_traffic_stays() {
    bad_release("broken", "migration 0003_broken failed").await;
}

/// Row 7: nobody answers the gate before its deadline; the default expiry rejects.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_7_the_gate_deadline_expires() {
    let _turn = exclusive();
    settled_stack().await;
    let served_before = served_version().await;
    let target = other_version().await;
    start(&[
        "--version",
        target,
        "--approve-before-switch",
        "--approval-timeout",
        "3",
    ]);
    let held = wait_for("the gate", in_phase(Phase::AwaitingApproval)).await;
    assert!(!held.gate.unwrap().deadline.is_empty());
    let done = await_phase(&FINAL_PHASES).await;
    assert_eq!(done.phase, Phase::Rejected as i32, "{done:?}");
    assert!(done.error.contains("nobody answered"), "{}", done.error);
    assert_settled(&served_before).await;
}

/// Row 8: `abort` during the switch, and again during the worker roll. Compensation returns
/// traffic, cron and workers to the old version; Temporal shows the run cancelled.
async fn abort_during(row: &str, reached: impl Fn(&DeployStatus) -> bool) {
    let _turn = exclusive();
    settled_stack().await;
    let served_before = served_version().await;
    let load = load::Load::start(FRONTEND, 8, true, DEPLOY_LIMIT);
    start(&[
        "--version",
        other_version().await,
        "--approve-before-switch",
        "--bake-seconds",
        "30",
    ]);
    hold_until(row, reached).await;
    let output = deployctl(&["abort", "--reason", "testing abort", "--wait"]);
    let report = load.finish().await;
    assert_eq!(output.status.code(), Some(5), "{}", text(&output));
    let status = status();
    assert_eq!(status.phase, Phase::Aborted as i32);
    assert_eq!(status.abort_reason, "testing abort");
    assert!(!status.compensation.is_empty());
    assert_eq!(
        temporal_status("deploy-local"),
        "WORKFLOW_EXECUTION_STATUS_CANCELED"
    );
    assert_no_failed_requests(&report, row);
    assert_settled(&served_before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_8_abort_during_the_switch() {
    abort_during("abort during the switch", switch_in_flight()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_8_abort_during_the_worker_roll() {
    abort_during("abort during the worker roll", running(ROLL_WORKERS)).await;
}

/// The cron rolls beside the workers and is done first: an abort then must still end as an
/// abort, with the cron put back (its image was once recorded after the abort, which failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_8_abort_after_the_cron_rolled_while_the_workers_roll() {
    let cron_done = |status: &DeployStatus| {
        status
            .steps
            .iter()
            .any(|s| s.name == ROLL_CRON && s.state == StepState::Done as i32)
    };
    let reached = move |status: &DeployStatus| cron_done(status) && running(ROLL_WORKERS)(status);
    abort_during("abort after the cron rolled", reached).await;
}

/// Row 9: `rollback` during the bake, under load. The figure from the command to the old
/// colour taking all new requests is printed, not asserted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_9_rollback_during_the_bake_under_load() {
    let _turn = exclusive();
    settled_stack().await;
    let served_before = served_version().await;
    let load = load::Load::start(FRONTEND, 8, true, DEPLOY_LIMIT);
    start(&["--version", other_version().await, "--bake-seconds", "60"]);
    wait_for("the bake", in_phase(Phase::Baking)).await;
    let old_server = live_servers().await;
    let asked = Instant::now();
    let rollback =
        tokio::task::spawn_blocking(|| deployctl(&["rollback", "--reason", "row 9", "--wait"]));
    let old_colour = if old_server == ["blue"] {
        "green"
    } else {
        "blue"
    };
    while live_servers().await != [old_colour] {
        assert!(
            asked.elapsed() < Duration::from_secs(60),
            "traffic never returned"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let flipped = asked.elapsed();
    let output = rollback.await.unwrap();
    let report = load.finish().await;
    println!(
        "row 9: rollback command → old colour taking all new requests: {} ms",
        flipped.as_millis()
    );
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    let status = status();
    assert_eq!(status.phase, Phase::RolledBack as i32);
    assert!(
        status.compensation[0].contains("traffic returned"),
        "{:?}",
        status.compensation
    );
    assert_eq!(
        temporal_status("deploy-local"),
        "WORKFLOW_EXECUTION_STATUS_FAILED"
    );
    assert_no_failed_requests(&report, "rollback during the bake");
    assert_settled(&served_before).await;
}

/// Row 10: a release that answers 500 on every third page passes its health checks; the
/// bake sees HAProxy's 5xx counter climb and rolls back by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_10_the_bake_rolls_back_a_release_that_answers_5xx() {
    let _turn = exclusive();
    settled_stack().await;
    let served_before = served_version().await;
    let load = load::Load::start(FRONTEND, 8, true, DEPLOY_LIMIT);
    let output = deployctl(&[
        "start",
        "--version",
        "flaky",
        "--bake-seconds",
        "60",
        "--wait",
    ]);
    let report = load.finish().await;
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    let status = status();
    assert_eq!(status.phase, Phase::RolledBack as i32);
    assert_eq!(status.failed_step, BAKE);
    assert!(status.error.contains("5xx"), "{}", status.error);
    // The bad release's own 500s reached users until the bake caught it; none after.
    let bake = step(&status, BAKE);
    let caught = instant_of(&bake.finished_at, report_wall(&report), report.started);
    let after = report.window(caught + Duration::from_secs(2), Instant::now());
    println!(
        "row 10: whole load {}; after the rollback {after}",
        report.figures()
    );
    assert_eq!(
        after.non_2xx + after.socket_errors,
        0,
        "after the rollback: {after}"
    );
    assert_settled(&served_before).await;
}

fn report_wall(report: &load::Report) -> std::time::SystemTime {
    std::time::SystemTime::now() - report.started.elapsed()
}

/// Row 11: two `start`s for one environment: one runs, the other is told which deploy holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_11_a_second_start_names_the_deploy_that_holds_the_environment() {
    let _turn = exclusive();
    settled_stack().await;
    let target = other_version().await;
    let (first, second) = tokio::join!(
        tokio::task::spawn_blocking(move || deployctl(&["start", "--version", target])),
        tokio::task::spawn_blocking(move || deployctl(&["start", "--version", target])),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    let codes = [first.status.code(), second.status.code()];
    assert!(
        codes.contains(&Some(0)) && codes.contains(&Some(2)),
        "{codes:?}"
    );
    let refused = if first.status.code() == Some(2) {
        &first
    } else {
        &second
    };
    let message = text(refused);
    assert!(message.contains("already running"), "{message}");
    assert!(message.contains(&format!("version {target}")), "{message}");
    assert!(message.contains("started by"), "{message}");
    let done = await_phase(&FINAL_PHASES).await;
    assert_eq!(done.phase, Phase::Completed as i32);
    assert_settled(target).await;
}

/// Row 12: `approve` and `reject` with no gate waiting: a clear error, and the deploy goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_12_approve_and_reject_with_no_gate_are_refused() {
    let _turn = exclusive();
    settled_stack().await;
    let target = other_version().await;
    start(&["--version", target, "--bake-seconds", "10"]);
    for command in [&["approve"][..], &["reject", "--reason", "no"][..]] {
        let output = deployctl(command);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(
            text(&output).contains("no approval gate is waiting"),
            "{}",
            text(&output)
        );
    }
    let done = await_phase(&FINAL_PHASES).await;
    assert_eq!(done.phase, Phase::Completed as i32, "{done:?}");
    assert!(done.rejection.is_none() && done.approval.is_none());
    // After the end, too.
    let output = deployctl(&["approve"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert_settled(target).await;
}

/// Row 13: a malformed `approve` and one with an unknown field, sent with the `temporal` CLI
/// as a signal (the Web UI's form) and as an update. Nothing wedges: the update is refused to
/// the caller, the signal is noted in the status, and a correct approval then proceeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_13_malformed_approvals_cannot_wedge_a_deploy() {
    let _turn = exclusive();
    settled_stack().await;
    let target = other_version().await;
    start(&["--version", target, "--approve-before-switch"]);
    wait_for("the gate", in_phase(Phase::AwaitingApproval)).await;
    let temporal = |arguments: &[&str]| {
        let mut all = vec!["exec", "-T", "temporal", "/temporal", "workflow"];
        all.extend_from_slice(arguments);
        all.extend_from_slice(&[
            "--workflow-id",
            "deploy-local",
            "--address",
            "127.0.0.1:7233",
        ]);
        Command::new(repository().join("scripts/compose.sh"))
            .current_dir(repository())
            .args(["-p", PROJECT])
            .args(&all)
            .output()
            .unwrap()
    };
    for body in [r#"{"by": "mallory"}"#, r#"{"approved_by": 42}"#, r#""yes""#] {
        let update = temporal(&["update", "execute", "--name", "approve", "--input", body]);
        assert!(
            !update.status.success(),
            "update {body} was accepted: {}",
            text(&update)
        );
        let signal = temporal(&["signal", "--name", "approve", "--input", body]);
        assert!(signal.status.success(), "{}", text(&signal));
    }
    // Still answering, still at the gate, and the refused bodies are in the status.
    let held = wait_for("the refused inputs", |s| s.refused_inputs.len() == 3).await;
    assert_eq!(held.phase, Phase::AwaitingApproval as i32);
    assert!(
        held.refused_inputs[0].contains("unknown field `by`"),
        "{:?}",
        held.refused_inputs
    );
    let approved = temporal(&[
        "signal",
        "--name",
        "approve",
        "--input",
        r#"{"approved_by": "web-ui", "comment": "fine"}"#,
    ]);
    assert!(approved.status.success(), "{}", text(&approved));
    let done = await_phase(&FINAL_PHASES).await;
    assert_eq!(done.phase, Phase::Completed as i32, "{done:?}");
    assert_eq!(done.approval.unwrap().approved_by, "web-ui");
    assert_settled(target).await;
}

/// Row 14: deploys started straight through Temporal (the `temporal` CLI, bypassing
/// `deployctl` and its checks) with crafted input fail in preflight with a clear message, and
/// nothing changes: traffic, containers and HAProxy stay as they were. The worker takes no
/// names from a request: one that brings its own environment is refused outright, and the
/// environment's name must hold to its grammar and be one the worker knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn row_14_a_crafted_request_sent_straight_to_temporal_changes_nothing() {
    let _turn = exclusive();
    settled_stack().await;
    let served = served_version().await;
    let live = live_servers().await;
    let docker = docker().await;
    let before = container_ids(&docker).await;
    let version = other_version().await;
    let inline_environment = serde_json::json!({
        "environment": {
            "name": "local",
            "image_repository": "ecomweb-api",
            "blue_container": "ecomweb_api_blue",
            "green_container": "ecomweb_api_green",
            "haproxy_backend": "api",
            "blue_server": "blue",
            "green_server": "green;disable server api/blue",
            "api_port": 3001,
        },
        "version": version,
    });
    let injected_name = serde_json::json!({
        "environment_name": format!("local;disable server api/blue{}", "x".repeat(10_000)),
        "version": version,
    });
    let unknown_name = serde_json::json!({"environment_name": "prod", "version": version});
    let injected_version =
        serde_json::json!({"environment_name": "local", "version": "v2; rm -rf /"});
    for (request, expected) in [
        (inline_environment, "carries its own environment"),
        (injected_name, "malformed environment name"),
        (unknown_name, "unknown environment \"prod\""),
        (injected_version, "malformed version"),
    ] {
        compose(&[
            "exec",
            "-T",
            "temporal",
            "/temporal",
            "workflow",
            "start",
            "--type",
            "DeployWorkflow",
            "--task-queue",
            "deployctl",
            "--workflow-id",
            "deploy-local",
            "--input",
            &request.to_string(),
            "--address",
            "127.0.0.1:7233",
        ]);
        let done = await_phase(&FINAL_PHASES).await;
        assert_eq!(done.phase, Phase::Failed as i32, "{done:?}");
        assert!(
            done.error.contains("refused before any change")
                && done.error.contains(expected)
                && done.error.len() < 400,
            "expected {expected:?} in {}",
            done.error
        );
        assert_eq!(served_version().await, served);
        assert_eq!(live_servers().await, live);
        assert_eq!(container_ids(&docker).await, before, "a container changed");
    }
}
