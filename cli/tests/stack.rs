//! The compose stack itself: it comes up from nothing, deploys keep zero failed requests
//! under both kinds of load and many times in a row, scaled workers all roll, and a later
//! `docker compose up -d` keeps what was deployed.

mod support;

use std::time::{Duration, Instant, SystemTime};

use deployctl_proto::v1::Phase;
use deployctl_workflows::plan::SWITCH_TRAFFIC;
use support::*;

/// Runs a deploy under load and prints figures for the switch and for steady state.
async fn deploy_under_load(version: &str, keep_alive: bool) -> load::Report {
    let wall = SystemTime::now();
    let monotonic = Instant::now();
    let load = load::Load::start(FRONTEND, 16, keep_alive, DEPLOY_LIMIT);
    let output = deploy(version).await;
    let report = load.finish().await;
    assert!(output.status.success(), "{}", text(&output));
    let status = status();
    let switch = step(&status, SWITCH_TRAFFIC);
    let from = instant_of(&switch.started_at, wall, monotonic);
    let to = instant_of(&switch.finished_at, wall, monotonic);
    let kind = if keep_alive {
        "keep-alive"
    } else {
        "Connection: close"
    };
    println!("16 {kind} connections, deploy to {version}:");
    println!("  whole deploy:     {}", report.figures());
    println!("  during switch:    {}", report.window(from, to));
    println!("  steady state:     {}", report.outside(from, to));
    report
}

fn assert_no_failures(report: &load::Report) {
    let figures = report.figures();
    assert!(figures.requests > 100, "the load hardly ran: {figures}");
    assert_eq!(figures.non_2xx, 0, "non-2xx answers: {figures}");
    assert_eq!(figures.socket_errors, 0, "socket errors: {figures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stack_comes_up_healthy_from_nothing() {
    let _turn = exclusive();
    compose(&["config", "--quiet"]);
    fresh_stack_on_v1().await;
    let docker = docker().await;
    let containers = project_containers(&docker).await;
    let services: Vec<&str> = [
        "haproxy",
        "ecomweb_api_blue",
        "ecomweb_api_green",
        "ecomweb_cron",
        "ecomweb_worker",
        "ecomweb_redis",
        "postgres",
        "temporal",
    ]
    .to_vec();
    for service in &services {
        assert!(
            containers
                .iter()
                .any(|(name, _, status)| name.contains(service) && status.contains("(healthy)")),
            "{service} is not up and healthy: {containers:?}"
        );
    }
    // Every published port is bound to 127.0.0.1 only.
    let ports = compose(&["ps"]);
    let listing = String::from_utf8_lossy(&ports.stdout);
    for published in listing.split_whitespace().filter(|w| w.contains("->")) {
        assert!(
            published.starts_with("127.0.0.1:"),
            "{published} is not bound to 127.0.0.1"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_deploy_under_connection_close_load_fails_no_request() {
    let _turn = exclusive();
    settled_stack().await;
    let report = deploy_under_load(other_version().await, false).await;
    assert_no_failures(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_deploys_in_a_row_under_load() {
    let _turn = exclusive();
    settled_stack().await;
    let pool = database().await;
    let overlaps_before = overlapping_cron_runs(&pool).await;
    let load = load::Load::start(FRONTEND, 16, true, Duration::from_secs(900));
    let mut times = Vec::new();
    for round in 1..=10 {
        let version = other_version().await;
        let started = Instant::now();
        let output = deploy(version).await;
        times.push(started.elapsed().as_secs_f64());
        assert!(
            output.status.success(),
            "deploy {round} to {version}: {}",
            text(&output)
        );
        assert_eq!(status().phase, Phase::Completed as i32);
        assert_eq!(
            temporal_status("deploy-local"),
            "WORKFLOW_EXECUTION_STATUS_COMPLETED"
        );
        assert_eq!(served_version().await, version);
    }
    let report = load.finish().await;
    println!(
        "10 deploys: {:.1?} s each; load: {}",
        times,
        report.figures()
    );
    assert_no_failures(&report);
    assert_eq!(
        overlapping_cron_runs(&pool).await,
        overlaps_before,
        "two crons ran at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deploy_rolls_every_scaled_worker() {
    let _turn = exclusive();
    settled_stack().await;
    compose(&["up", "-d", "--scale", "ecomweb_worker=5"]);
    wait_until_healthy().await;
    assert_eq!(service_images("ecomweb_worker").await.len(), 5);
    let version = other_version().await;
    let output = deploy_with(version, &["--workers", "5"]).await;
    assert!(output.status.success(), "{}", text(&output));
    let workers = service_images("ecomweb_worker").await;
    assert_eq!(workers.len(), 5, "{workers:?}");
    let image = format!("ecomweb-api:{version}");
    assert!(
        workers
            .iter()
            .all(|(_, i, running)| *i == image && *running),
        "{workers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compose_up_after_a_deploy_keeps_it() {
    let _turn = exclusive();
    settled_stack().await;
    // Back to compose.yaml's own scale, so the re-up below has nothing of its own to do.
    compose(&["up", "-d"]);
    wait_until_healthy().await;
    let version = other_version().await;
    let output = deploy(version).await;
    assert!(output.status.success(), "{}", text(&output));
    let docker = docker().await;
    let before = container_ids(&docker).await;

    let load = load::Load::start(FRONTEND, 16, false, Duration::from_secs(120));
    let up = compose(&["up", "-d"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let report = load.finish().await;
    println!("re-up under load: {}", report.figures());
    println!("{}", String::from_utf8_lossy(&up.stderr));
    assert_no_failures(&report);

    let image = format!("ecomweb-api:{version}");
    for name in ["ecomweb_api_blue", "ecomweb_api_green", "ecomweb_cron"] {
        assert_eq!(
            container_image(name).await,
            Some((image.clone(), true)),
            "{name}"
        );
    }
    let workers = service_images("ecomweb_worker").await;
    assert!(
        workers
            .iter()
            .all(|(_, i, running)| *i == image && *running),
        "{workers:?}"
    );
    assert_eq!(served_version().await, version);
    // Nothing was recreated: Compose saw every container as up to date.
    assert_eq!(container_ids(&docker).await, before);
}
