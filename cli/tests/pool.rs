//! One worker pool: the app's own workers run the deploys and roll themselves through
//! Temporal's Worker Deployments, losing no work.
//!
//! The app's workflows are started straight into the pool's `ecomweb` task queue while a
//! deploy rolls it; their side effects in Postgres (orders, `task_runs`) show that each ran
//! exactly once. Temporal's own records (the deployment's versions, the deploy's history) show
//! how the roll went.

mod support;

use std::{collections::HashMap, process::Command, time::Duration};

use deployctl_proto::v1::{DeployStatus, Phase, change};
use futures::StreamExt;
use serde_json::json;
use support::*;
use temporalio_client::Client;
use temporalio_common::UntypedWorkflow;

const DEPLOYMENT: &str = "ecomweb-local";

/// A prefix no earlier run used, for this run's workflow ids and side effects.
fn run_prefix(what: &str) -> String {
    format!("{what}-{}", chrono::Utc::now().format("%Y%m%d%H%M%S%3f"))
}

/// Starts `count` LongTask workflows of `seconds` each.
async fn start_long_tasks(client: &Client, prefix: &str, count: usize, seconds: u64) {
    for index in 0..count {
        let id = format!("{prefix}-long-{index}");
        start_app_workflow(
            client,
            "LongTask",
            &id,
            json!({"key": id, "seconds": seconds}),
        )
        .await
        .unwrap();
    }
}

/// Long tasks finished, by key: (rows, build ids, containers that ran them).
async fn long_task_runs(prefix: &str) -> Vec<(String, String, String, f64)> {
    let pool = database().await;
    sqlx::query_as(
        "SELECT key, build_id, worker, extract(epoch FROM finished_at)::float8 FROM task_runs \
         WHERE key LIKE $1 || '-long-%' ORDER BY key",
    )
    .bind(prefix)
    .fetch_all(&pool)
    .await
    .unwrap()
}

/// Waits until `count` long tasks have a row, then returns the rows.
async fn await_long_tasks(prefix: &str, count: usize) -> Vec<(String, String, String, f64)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let rows = long_task_runs(prefix).await;
        if rows.len() >= count || std::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The Worker Deployment as the temporal CLI describes it: the Current Build ID, and each
/// version's drainage status.
fn deployment() -> (String, HashMap<String, String>) {
    let value = temporal_json(&["worker", "deployment", "describe", "--name", DEPLOYMENT]);
    let current = value["routingConfig"]["currentVersionBuildID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let versions = value["versionSummaries"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            (
                v["BuildID"].as_str().unwrap_or_default().to_string(),
                v["drainageStatus"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (current, versions)
}

fn start_deploy(arguments: &[&str]) {
    let mut all = vec!["start"];
    all.extend_from_slice(arguments);
    let output = deployctl(&all);
    assert!(output.status.success(), "{}", text(&output));
}

fn workers_replaced(status: &DeployStatus) -> deployctl_proto::v1::WorkersReplaced {
    status
        .changes
        .iter()
        .find_map(|c| match &c.kind {
            Some(change::Kind::WorkersReplaced(w)) => Some(w.clone()),
            _ => None,
        })
        .expect("the deploy recorded no worker roll")
}

/// Acceptance 1, 2 and 5: 1,000 orders stream in while a deploy rolls 3 workers, and 50
/// 20-second tasks start just before the roll. Every order and every task completes exactly
/// once; the tasks finish on the build they started on, and the old replicas stop only after
/// Temporal reports their version drained. Afterwards the new version is Current and the old
/// one Drained.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pool_rolls_itself_under_a_stream_of_app_tasks_losing_nothing() {
    const ORDERS: usize = 1000;
    const LONG_TASKS: usize = 50;
    const LONG_SECONDS: u64 = 20;
    let _turn = exclusive();
    settled_stack().await;
    compose(&["up", "-d", "--scale", "ecomweb_worker=3"]);
    wait_until_healthy().await;
    let client = temporal().await;
    let old = served_version().await;
    let target = other_version().await;
    let prefix = run_prefix("pool");
    let deaths = DeathWatch::start();

    start_deploy(&["--version", target, "--workers", "3"]);
    start_long_tasks(&client, &prefix, LONG_TASKS, LONG_SECONDS).await;
    // The order stream: ~33 starts a second, through the whole roll.
    let orders = {
        let client = client.clone();
        let prefix = prefix.clone();
        tokio::spawn(async move {
            let mut pace = tokio::time::interval(Duration::from_millis(30));
            for index in 0..ORDERS {
                pace.tick().await;
                let id = format!("{prefix}-order-{index}");
                start_app_workflow(&client, "ProcessOrder", &id, json!(id))
                    .await
                    .unwrap();
            }
        })
    };
    let done = await_phase(&FINAL_PHASES).await;
    orders.await.unwrap();
    assert_eq!(done.phase, Phase::Completed as i32, "{done:?}");

    // Every order exactly once, from its row in Postgres.
    let pool = database().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let (distinct, rows) = loop {
        let (distinct, rows): (i64, i64) = sqlx::query_as(
            "SELECT count(DISTINCT customer), count(*) FROM orders WHERE customer LIKE $1 || '-order-%'",
        )
        .bind(&prefix)
        .fetch_one(&pool)
        .await
        .unwrap();
        if distinct as usize >= ORDERS || std::time::Instant::now() > deadline {
            break (distinct, rows);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("orders: {distinct} distinct, {rows} rows for {ORDERS} workflows");
    assert_eq!(distinct as usize, ORDERS, "orders lost");
    assert_eq!(rows as usize, ORDERS, "orders done twice");
    // ...and every ProcessOrder workflow completed, none failed.
    let outcomes: Vec<_> = futures::stream::iter(0..ORDERS)
        .map(|index| {
            let handle =
                client.get_workflow_handle::<UntypedWorkflow>(format!("{prefix}-order-{index}"));
            async move { handle.get_result(Default::default()).await.map(drop) }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let failed: Vec<_> = outcomes.iter().filter(|o| o.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} orders did not complete: {:?}",
        failed.len(),
        failed.first()
    );

    // Every long task exactly once, on the old build (Pinned), and before its worker stopped.
    let runs = await_long_tasks(&prefix, LONG_TASKS).await;
    let keys: std::collections::BTreeSet<_> = runs.iter().map(|r| r.0.clone()).collect();
    assert_eq!(
        runs.len(),
        LONG_TASKS,
        "long tasks lost or done twice: {runs:?}"
    );
    assert_eq!(keys.len(), LONG_TASKS, "long tasks done twice: {runs:?}");
    assert!(
        runs.iter().all(|r| r.1 == old),
        "a Pinned task moved off its build {old}: {runs:?}"
    );
    // The 3 old replicas were stopped; wait until their deaths are seen.
    deaths.await_deaths(3);
    let deaths = deaths.deaths();
    for (key, _, worker, finished) in &runs {
        let died = deaths
            .iter()
            .find(|(id, _, _)| id.starts_with(worker.as_str()))
            .map(|(_, time, _)| *time)
            .unwrap_or_else(|| panic!("the old worker {worker} that ran {key} never stopped"));
        assert!(
            died >= finished.floor() as i64,
            "{worker} stopped at {died}, before {key} finished at {finished}"
        );
    }

    // Temporal's own view: the new version Current, the old one Drained.
    let (current, versions) = deployment();
    assert_eq!(current, target, "{versions:?}");
    assert_eq!(
        versions.get(&old).map(String::as_str),
        Some("drained"),
        "{versions:?}"
    );
    let roll = workers_replaced(&done);
    assert_eq!(roll.drained_version, format!("{DEPLOYMENT}:{old}"));
    assert_eq!(roll.current_version, format!("{DEPLOYMENT}:{target}"));
    let workers = service_images("ecomweb_worker").await;
    assert_eq!(workers.len(), 3, "{workers:?}");
    assert!(
        workers
            .iter()
            .all(|(_, image, running)| *running && image.ends_with(target))
    );

    compose(&["up", "-d"]);
    wait_until_healthy().await;
}

/// Acceptance 3: the pool member running the roll's drain wait is killed (SIGKILL) while the
/// activity runs. The deploy completes on the new workers, its history shows the activity
/// retried and finished, and the pool ends at its wanted size.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_worker_that_runs_the_roll_loses_nothing() {
    let _turn = exclusive();
    settled_stack().await;
    let client = temporal().await;
    let target = other_version().await;
    let prefix = run_prefix("kill");
    // Pinned tasks on the old version keep it draining for a while.
    start_long_tasks(&client, &prefix, 5, 15).await;
    start_deploy(&["--version", target]);
    let deadline = std::time::Instant::now() + DEPLOY_LIMIT;
    let victim = loop {
        let described = temporal_json(&["workflow", "describe", "--workflow-id", "deploy-local"]);
        let draining = described["pendingActivities"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| {
                a["activityType"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("await_drained")
                    && a["state"].as_str() == Some("PENDING_ACTIVITY_STATE_STARTED")
            })
            .and_then(|a| a["lastWorkerIdentity"].as_str().map(String::from));
        if let Some(identity) = draining {
            break identity.split_once('@').unwrap().1.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the roll never waited for the drain"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let output = Command::new("docker")
        .args(["kill", "--signal", "KILL", &victim])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    println!("killed {victim}, which was running the drain wait");

    let done = await_phase(&FINAL_PHASES).await;
    assert_eq!(done.phase, Phase::Completed as i32, "{done:?}");
    // The history: the drain wait was started again (attempt 2 or later) and completed.
    let history = deploy_history();
    let scheduled: Vec<&str> = history
        .iter()
        .filter(|e| {
            e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
                .as_str()
                .unwrap_or_default()
                .contains("await_drained")
        })
        .filter_map(|e| e["eventId"].as_str())
        .collect();
    assert!(!scheduled.is_empty(), "no drain wait in the history");
    let attempts: Vec<i64> = history
        .iter()
        .filter(|e| {
            scheduled.contains(
                &e["activityTaskStartedEventAttributes"]["scheduledEventId"]
                    .as_str()
                    .unwrap_or_default(),
            )
        })
        .filter_map(|e| e["activityTaskStartedEventAttributes"]["attempt"].as_i64())
        .collect();
    let completed = history.iter().any(|e| {
        scheduled.contains(
            &e["activityTaskCompletedEventAttributes"]["scheduledEventId"]
                .as_str()
                .unwrap_or_default(),
        )
    });
    println!("drain wait attempts in the history: {attempts:?}");
    assert!(
        attempts.iter().any(|a| *a >= 2),
        "the drain wait was never retried: {attempts:?}"
    );
    assert!(completed, "the drain wait never completed");
    let workers = service_images("ecomweb_worker").await;
    let running: Vec<_> = workers
        .iter()
        .filter(|(_, image, running)| *running && image.ends_with(target))
        .collect();
    assert_eq!(running.len(), 2, "{workers:?}");
    assert_eq!(await_long_tasks(&prefix, 5).await.len(), 5);
    // The killed member, if it is still around, is gone or running again, never half there.
    let _ = Command::new("docker").args(["rm", "-f", &victim]).output();
    compose(&["up", "-d"]);
    wait_until_healthy().await;
}

/// Acceptance 4: one of the 2 workers removed by hand before a deploy. The deploy names the
/// drift and restores the wanted count, on the new version: with a surge of 1, one new replica
/// before the hand-over and the other once the old one is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_removed_by_hand_is_restored_and_named() {
    let _turn = exclusive();
    settled_stack().await;
    let workers = service_images("ecomweb_worker").await;
    assert_eq!(workers.len(), 2, "{workers:?}");
    let output = Command::new("docker")
        .args(["rm", "-f", &workers[0].0])
        .output()
        .unwrap();
    assert!(output.status.success());
    let target = other_version().await;
    let output = deploy_with(target, &["--worker-surge", "1"]).await;
    assert!(output.status.success(), "{}", text(&output));
    let done = status();
    let roll = workers_replaced(&done);
    assert_eq!(roll.started.len(), 2, "{roll:?}");
    assert!(
        done.notices
            .iter()
            .any(|n| n.contains("1 running") && n.contains("wants 2")),
        "the drift was not named: {:?}",
        done.notices
    );
    assert!(
        text(&output).contains("wants 2"),
        "deployctl did not show the drift: {}",
        text(&output)
    );
    let workers = service_images("ecomweb_worker").await;
    assert_eq!(workers.len(), 2, "{workers:?}");
    assert!(
        workers
            .iter()
            .all(|(_, image, running)| *running && image.ends_with(target))
    );
}

/// The SDK's own Prometheus exporter on every pool member: task slots, pollers, completed
/// tasks and the client's long-poll latency, each series tagged with the worker's Build ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_worker_serves_the_sdks_metrics_tagged_with_its_build_id() {
    let _turn = exclusive();
    settled_stack().await;
    let docker = docker().await;
    let workers = service_images("ecomweb_worker").await;
    assert!(!workers.is_empty());
    for (name, image, _) in workers {
        let build_id = image.rsplit_once(':').unwrap().1.to_string();
        let inspected = docker
            .inspect_container(
                &name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .unwrap();
        // The worker's address on the project's own network.
        let address = inspected
            .network_settings
            .and_then(|n| n.networks)
            .and_then(|networks| networks.into_values().find_map(|n| n.ip_address))
            .filter(|ip| !ip.is_empty())
            .unwrap_or_else(|| panic!("{name} has no address on the project network"));
        let metrics = reqwest::get(format!("http://{address}:9464/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for series in [
            "temporal_worker_task_slots_used",
            "temporal_num_pollers",
            "temporal_workflow_task_queue_poll_succeed",
            "temporal_long_request_latency",
        ] {
            let tagged = metrics.lines().any(|line| {
                line.starts_with(series) && line.contains(&format!("build_id=\"{build_id}\""))
            });
            assert!(tagged, "{name}: no {series} tagged build_id={build_id}");
        }
    }
}

/// The optional ramp: the new version takes 25%, then 50% of new workflows, each share held
/// for a while, before it becomes Current. Watched from Temporal's own routing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ramp_holds_each_share_before_the_new_version_becomes_current() {
    let _turn = exclusive();
    settled_stack().await;
    let target = other_version().await;
    start_deploy(&[
        "--version",
        target,
        "--worker-ramp",
        "25,50",
        "--worker-ramp-pause",
        "3",
    ]);
    let mut shares = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + DEPLOY_LIMIT;
    loop {
        let value = temporal_json(&["worker", "deployment", "describe", "--name", DEPLOYMENT]);
        let routing = &value["routingConfig"];
        if routing["rampingVersionBuildID"].as_str() == Some(target) {
            shares.insert(routing["rampingVersionPercentage"].as_f64().unwrap_or(0.0) as u32);
        }
        let phase = status().phase;
        if FINAL_PHASES.iter().any(|p| *p as i32 == phase) {
            assert_eq!(phase, Phase::Completed as i32);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the deploy never ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        shares.into_iter().collect::<Vec<_>>(),
        [25, 50],
        "ramp shares seen"
    );
    let (current, _) = deployment();
    assert_eq!(current, target);
}
