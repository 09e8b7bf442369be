//! The real stack, from the tests' side: compose.yaml brought up by docker-compose, read back
//! through HAProxy's Runtime API (./run/haproxy/admin.sock), Postgres (127.0.0.1:55432), Docker and
//! Temporal (127.0.0.1:7233). Nothing here is mocked.

#![allow(dead_code)]

pub mod load;

use std::{
    path::PathBuf,
    process::{Command, Output},
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

use bollard::{Docker, query_parameters::ListContainersOptions};
use deployctl_activities::haproxy::{Haproxy, RuntimeAddress, ServerState};
use deployctl_proto::v1::{DeployStatus, Phase};
use sqlx::PgPool;
use std::time::SystemTime;

pub const FRONTEND: &str = "http://127.0.0.1:8080";
pub const PROJECT: &str = "deployctl";

/// The stack is shared: tests that deploy take turns.
static STACK: Mutex<()> = Mutex::new(());

pub fn exclusive() -> MutexGuard<'static, ()> {
    STACK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The machine's compose tool on the project, through `scripts/compose.sh`.
pub fn compose(arguments: &[&str]) -> Output {
    let output = Command::new(repository().join("scripts/compose.sh"))
        .current_dir(repository())
        .args(["-p", PROJECT])
        .args(arguments)
        .output()
        .expect("running the compose tool");
    assert!(
        output.status.success(),
        "compose {arguments:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A fresh stack on v1: blue live, green idle, cron and 2 workers on v1, empty database.
pub async fn fresh_stack_on_v1() {
    // Every container of the project first, including the ones the workers created and any
    // of a profile (the shop): a network with a live endpoint cannot be removed.
    let docker = docker().await;
    for container in list_project(&docker).await {
        let _ = docker
            .remove_container(
                &name_of(&container),
                Some(bollard::query_parameters::RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
    }
    compose(&["down", "--volumes", "--remove-orphans", "--timeout", "5"]);
    // HAProxy's saved state is in ./run/haproxy, which `down --volumes` keeps: a fresh stack
    // starts from haproxy.cfg (blue live).
    let _ = std::fs::remove_file(repository().join("run/haproxy/server-state"));
    std::fs::copy(repository().join(".env.example"), repository().join(".env")).unwrap();
    compose(&["up", "-d"]);
    wait_until_healthy().await;
}

/// Waits until every container of the project reports healthy and the frontend answers.
pub async fn wait_until_healthy() {
    let docker = docker().await;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let containers = project_containers(&docker).await;
        let unhealthy: Vec<String> = containers
            .iter()
            .filter(|(_, _, status)| !status.contains("(healthy)"))
            .map(|(name, _, status)| format!("{name}: {status}"))
            .collect();
        let frontend_ok = reqwest::get(format!("{FRONTEND}/version"))
            .await
            .is_ok_and(|r| r.status().is_success());
        if !containers.is_empty() && unhealthy.is_empty() && frontend_ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "stack not healthy in time: {unhealthy:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub async fn docker() -> Docker {
    deployctl_activities::docker::connect()
        .await
        .expect("Docker")
}

/// Every container of the project, running or not.
pub async fn list_project(docker: &Docker) -> Vec<bollard::models::ContainerSummary> {
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![format!("com.docker.compose.project={PROJECT}")],
    )]);
    docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .unwrap()
}

pub fn name_of(summary: &bollard::models::ContainerSummary) -> String {
    let names = summary.names.clone().unwrap_or_default().join(",");
    names.trim_start_matches('/').to_string()
}

/// (name, image, status) of every container of the project.
pub async fn project_containers(docker: &Docker) -> Vec<(String, String, String)> {
    list_project(docker)
        .await
        .into_iter()
        .map(|c| {
            (
                name_of(&c),
                c.image.unwrap_or_default(),
                c.status.unwrap_or_default(),
            )
        })
        .collect()
}

/// Container ids by name: a recreated container gets a new id.
pub async fn container_ids(docker: &Docker) -> Vec<(String, String)> {
    let mut ids: Vec<(String, String)> = list_project(docker)
        .await
        .into_iter()
        .map(|c| (name_of(&c), c.id.unwrap_or_default()))
        .collect();
    ids.sort();
    ids
}

/// Images of the containers of one Compose service, running or not.
pub async fn service_images(service: &str) -> Vec<(String, String, bool)> {
    let docker = docker().await;
    deployctl_activities::docker::service_containers(&docker, PROJECT, service)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.image, c.running))
        .collect()
}

pub async fn container_image(name: &str) -> Option<(String, bool)> {
    let docker = docker().await;
    deployctl_activities::docker::container(&docker, name)
        .await
        .unwrap()
        .map(|c| (c.image, c.running))
}

pub fn haproxy() -> Haproxy {
    Haproxy {
        // The stack shares the socket with the host through ./run/haproxy; no TCP admin port.
        address: RuntimeAddress::Unix(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../run/haproxy/admin.sock").into(),
        ),
        state_file: None,
        check_rise: 2,
        check_fall: 2,
    }
}

pub async fn api_servers() -> Vec<ServerState> {
    haproxy().servers("api").await.expect("HAProxy runtime API")
}

/// Names of the servers HAProxy sends new requests to.
pub async fn live_servers() -> Vec<String> {
    api_servers()
        .await
        .into_iter()
        .filter(|s| s.carries_traffic())
        .map(|s| s.name)
        .collect()
}

pub async fn database() -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect("postgresql://ecomweb:ecomweb-db-s3cret@127.0.0.1:55432/ecomweb")
        .await
        .expect("Postgres on 127.0.0.1:55432")
}

/// Pairs of cron runs whose [start, end] intervals overlap: two crons at once.
pub async fn overlapping_cron_runs(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM cron_runs a JOIN cron_runs b ON a.id < b.id \
         AND a.started_at < coalesce(b.finished_at, clock_timestamp()) \
         AND b.started_at < coalesce(a.finished_at, clock_timestamp())",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

pub async fn cron_containers_seen(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(DISTINCT container) FROM cron_runs")
        .fetch_one(pool)
        .await
        .unwrap()
}

pub async fn finished_migrations(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT migration_name FROM _prisma_migrations \
         WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Runs the `deployctl` binary under test.
pub fn deployctl(arguments: &[&str]) -> Output {
    // From the project directory, as an operator runs it: compose.yaml is found there.
    Command::new(env!("CARGO_BIN_EXE_deployctl"))
        .current_dir(repository())
        .args(arguments)
        .env("TEMPORAL_ADDRESS", "127.0.0.1:7233")
        // A short bake keeps the suite quick; the fault tests that need one set their own.
        .env("DEPLOYCTL_BAKE_SECONDS", "2")
        .output()
        .expect("running deployctl")
}

pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn status() -> DeployStatus {
    let output = deployctl(&["status", "--json"]);
    read_status(&output).unwrap_or_else(|| panic!("no status: {}", text(&output)))
}

/// The deploy status `status --json` printed, whatever its exit code (the outcome's); `None`
/// when it printed an error document instead (`{"exit_code", "error"}`: a status has an
/// `error` of its own, but no `exit_code`).
pub fn read_status(output: &Output) -> Option<DeployStatus> {
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    if document.get("exit_code").is_some() {
        return None;
    }
    serde_json::from_value(document).ok()
}

/// The version the frontend serves now.
pub async fn served_version() -> String {
    reqwest::get(format!("{FRONTEND}/version"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .trim()
        .to_string()
}

/// The other sample version: what a deploy from the current state should go to.
pub async fn other_version() -> &'static str {
    if served_version().await == "v1" {
        "v2"
    } else {
        "v1"
    }
}

/// The temporal CLI inside the temporal container, with JSON output.
pub fn temporal_json(arguments: &[&str]) -> serde_json::Value {
    let mut all = vec!["exec", "-T", "temporal", "/temporal"];
    all.extend_from_slice(arguments);
    all.extend_from_slice(&["--output", "json", "--address", "127.0.0.1:7233"]);
    let output = compose(&all);
    serde_json::from_slice(&output.stdout).expect("temporal CLI JSON")
}

/// Temporal's own view of the workflow's status, e.g. "WORKFLOW_EXECUTION_STATUS_COMPLETED".
pub fn temporal_status(workflow_id: &str) -> String {
    let value = temporal_json(&["workflow", "describe", "--workflow-id", workflow_id]);
    value["workflowExecutionInfo"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The deploy workflow's history, as the temporal CLI prints it.
pub fn deploy_history() -> Vec<serde_json::Value> {
    let value = temporal_json(&["workflow", "show", "--workflow-id", "deploy-local"]);
    value["events"].as_array().cloned().unwrap_or_default()
}

/// The container (its id, which is its hostname) of a worker identity `pid@hostname`.
fn container_of(identity: &str) -> Option<String> {
    identity
        .split_once('@')
        .map(|(_, host)| host.to_string())
        .filter(|host| !host.is_empty())
}

/// The pool member running the deploy now: the one running its pending activity, or else the
/// one that took its last workflow task (which holds it on its sticky queue).
pub fn worker_running_the_deploy() -> String {
    let described = temporal_json(&["workflow", "describe", "--workflow-id", "deploy-local"]);
    let started = described["pendingActivities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["state"].as_str() == Some("PENDING_ACTIVITY_STATE_STARTED"))
        .find_map(|a| a["lastWorkerIdentity"].as_str().and_then(container_of));
    if let Some(container) = started {
        return container;
    }
    deploy_history()
        .iter()
        .rev()
        .find_map(|event| {
            event["workflowTaskStartedEventAttributes"]["identity"]
                .as_str()
                .and_then(container_of)
        })
        .expect("no worker has taken a task of the deploy")
}

/// The worker pool recreated with these crash points armed (empty: none), then healthy.
pub async fn pool_with_failpoints(failpoints: &str) {
    let output = Command::new(repository().join("scripts/compose.sh"))
        .current_dir(repository())
        .args([
            "-p",
            PROJECT,
            "up",
            "-d",
            "--no-deps",
            "--force-recreate",
            "ecomweb_worker",
        ])
        .env("DEPLOYCTL_FAILPOINTS", failpoints)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    wait_until_healthy().await;
}

/// Watches pool members die, live (the engine keeps only its last few hundred events, and
/// healthchecks fill them within minutes): container id, unix time and exit code of each.
pub struct DeathWatch {
    child: std::process::Child,
    seen: std::sync::Arc<Mutex<Vec<(String, i64, i64)>>>,
}

impl DeathWatch {
    pub fn start() -> Self {
        use std::io::BufRead;
        let mut child = Command::new("docker")
            .args([
                "events",
                "--filter",
                "event=die",
                "--filter",
                "label=com.docker.compose.service=ecomweb_worker",
                "--format",
                "{{.Actor.ID}} {{.Time}} {{.Actor.Attributes.exitCode}}",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("docker events");
        let stdout = child.stdout.take().unwrap();
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let mut fields = line.split_whitespace();
                if let (Some(id), Some(time), Some(code)) =
                    (fields.next(), fields.next(), fields.next())
                {
                    if let (Ok(time), Ok(code)) = (time.parse(), code.parse()) {
                        sink.lock().unwrap().push((id.to_string(), time, code));
                    }
                }
            }
        });
        // `docker events` subscribes as it starts; give it a moment before anything dies.
        std::thread::sleep(Duration::from_millis(500));
        DeathWatch { child, seen }
    }

    /// Waits (at most 30 s) until at least `count` deaths have been seen. The events arrive
    /// late, so a test that counts them first waits for deaths it caused itself.
    pub fn await_deaths(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.deaths().len() < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every death seen so far: (container id, unix time, exit code).
    pub fn deaths(&self) -> Vec<(String, i64, i64)> {
        self.seen.lock().unwrap().clone()
    }

    /// How many died of a crash point: `abort()`, which this static build ends with exit
    /// 134 or 139; not a graceful stop (0), SIGKILL (137) or SIGTERM (143).
    pub fn crashes(&self) -> usize {
        self.deaths()
            .iter()
            .filter(|(_, _, code)| ![0, 137, 143].contains(code))
            .count()
    }
}

impl Drop for DeathWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The app's task queue, served by the worker pool.
pub const APP_TASK_QUEUE: &str = "ecomweb";

/// A Temporal client on the stack's server.
pub async fn temporal() -> temporalio_client::Client {
    let address = deployctl_worker::TemporalArgs::default();
    deployctl_worker::connect(&address, Duration::from_secs(30))
        .await
        .unwrap()
}

/// Starts one of the app's workflows by its type name, with a JSON input.
pub async fn start_app_workflow(
    client: &temporalio_client::Client,
    workflow_type: &str,
    id: &str,
    input: serde_json::Value,
) -> Result<(), String> {
    use temporalio_common::{
        UntypedWorkflow, data_converters::RawValue, protos::temporal::api::common::v1::Payload,
    };
    let payload = Payload {
        metadata: std::collections::HashMap::from([(
            "encoding".to_string(),
            b"json/plain".to_vec(),
        )]),
        data: serde_json::to_vec(&input).unwrap(),
        ..Default::default()
    };
    client
        .start_workflow(
            UntypedWorkflow::new(workflow_type),
            RawValue::new(vec![payload]),
            temporalio_client::WorkflowStartOptions::new(APP_TASK_QUEUE, id.to_string()).build(),
        )
        .await
        .map(drop)
        .map_err(|error| format!("starting {workflow_type} {id}: {error}"))
}

pub const DEPLOY_LIMIT: Duration = Duration::from_secs(300);

/// Marks failed migrations as rolled back, as an operator does with Prisma's
/// `migrate resolve --rolled-back` after a failed release, so later deploys go on.
pub async fn resolve_failed_migrations() {
    let pool = database().await;
    sqlx::query(
        "UPDATE _prisma_migrations SET rolled_back_at = now() \
         WHERE finished_at IS NULL AND rolled_back_at IS NULL AND logs IS NOT NULL",
    )
    .execute(&pool)
    .await
    .unwrap();
}

/// Brings the stack up if it is not, and ends any deploy a failed test left behind.
pub async fn settled_stack() {
    if reqwest::get(format!("{FRONTEND}/version")).await.is_err() {
        fresh_stack_on_v1().await;
    }
    if let Some(status) = read_status(&deployctl(&["status", "--json"])) {
        if !FINAL_PHASES.iter().any(|p| *p as i32 == status.phase) {
            deployctl(&["abort", "--reason", "cleaning up after a failed test"]);
            await_phase(&FINAL_PHASES).await;
        }
    }
    resolve_failed_migrations().await;
    // A bad release a test left live (flaky, sick) is replaced by a good one.
    if !["v1", "v2"].contains(&served_version().await.as_str()) {
        let output = deploy("v1").await;
        assert!(output.status.success(), "{}", text(&output));
    }
}

/// Phases a deploy ends in.
pub const FINAL_PHASES: [Phase; 5] = [
    Phase::Completed,
    Phase::Failed,
    Phase::Rejected,
    Phase::RolledBack,
    Phase::Aborted,
];

pub async fn await_phase(phases: &[Phase]) -> DeployStatus {
    await_phase_of(status, phases).await
}

/// `await_phase`, for the environment whose status `status` reads.
pub async fn await_phase_of(status: impl Fn() -> DeployStatus, phases: &[Phase]) -> DeployStatus {
    let deadline = Instant::now() + DEPLOY_LIMIT;
    loop {
        let status = status();
        if phases.iter().any(|p| *p as i32 == status.phase) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "deploy never reached {phases:?}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs `deployctl start --wait` off the async runtime, so load keeps flowing meanwhile.
pub async fn deploy(version: &str) -> std::process::Output {
    deploy_with(version, &[]).await
}

/// `deploy`, with more `start` options.
pub async fn deploy_with(version: &str, options: &[&str]) -> std::process::Output {
    let mut arguments: Vec<String> = ["start", "--version", version, "--wait"]
        .map(String::from)
        .to_vec();
    arguments.extend(options.iter().map(|o| o.to_string()));
    tokio::task::spawn_blocking(move || {
        deployctl(&arguments.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap()
}

pub fn instant_of(timestamp: &str, wall: SystemTime, monotonic: Instant) -> Instant {
    let at: SystemTime = chrono::DateTime::parse_from_rfc3339(timestamp)
        .expect("RFC 3339 step time")
        .into();
    match at.duration_since(wall) {
        Ok(after) => monotonic + after,
        Err(before) => monotonic - before.duration(),
    }
}

pub fn step<'a>(status: &'a DeployStatus, name: &str) -> &'a deployctl_proto::v1::Step {
    status.steps.iter().find(|s| s.name == name).unwrap()
}

/// `docker ps` over one Compose service's containers, with `arguments` (`-q`, `-a`,
/// `--format ...`): one line of its answer per container.
pub fn docker_ps(service: &str, arguments: &[&str]) -> Vec<String> {
    let listed = std::process::Command::new("docker")
        .arg("ps")
        .arg("--filter")
        .arg(format!("label=com.docker.compose.service={service}"))
        .args(arguments)
        .output()
        .unwrap();
    String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// The names of the pool members that run now (`docker ps`).
pub fn running_workers() -> Vec<String> {
    docker_ps("ecomweb_worker", &["--format", "{{.Names}}"])
}

/// Resident set size of each pool member's process, in MiB (`docker top ... -o pid,rss`).
pub fn worker_rss() -> Vec<(String, f64)> {
    running_workers()
        .into_iter()
        .filter_map(|name| {
            let top = std::process::Command::new("docker")
                .args(["top", &name, "-o", "pid,rss"])
                .output()
                .ok()?;
            let kib: f64 = String::from_utf8_lossy(&top.stdout)
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
                .sum();
            Some((name, kib / 1024.0))
        })
        .collect()
}
