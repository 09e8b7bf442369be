//! Benchmark: deployctl's deploy beside the seed's manual procedure, on the same stack, in the
//! same run, under the same load; then a rollback, deploys with 2 to 20 workers, the history's
//! size per deploy, and the worker's footprint.
//!
//! `bench/run.sh` runs it (`cargo test -p deployctl --bench deploy -- OUT_DIR`) and turns its
//! `deploy.json` and `samples/*.csv` into a table and a plot (`bench/report.py`). It prints
//! figures and asserts nothing about speed: these machines are noisy, so what counts is the
//! comparison within one run.

#[path = "../tests/support/mod.rs"]
mod support;

use std::{
    collections::BTreeMap,
    io::Write,
    path::Path,
    process::Command,
    time::{Duration, Instant, SystemTime},
};

use deployctl_proto::v1::Phase;
use deployctl_workflows::plan::SWITCH_TRAFFIC;
use serde::Serialize;
use support::{
    load::{Figures, Load, Report},
    *,
};

/// Connections of each kind (keep-alive, `Connection: close`), each a closed loop.
const CONNECTIONS: usize = 4;
/// Load before a deploy starts and after it ends: the "before" and "after" of the switch.
const SETTLE: Duration = Duration::from_secs(3);
/// deployctl and the manual procedure take turns this many times each.
const ROUNDS: usize = 3;
const WORKER_COUNTS: [u32; 4] = [2, 5, 10, 20];
/// The deploys measured here have no bake: the bake is a chosen wait, not a cost.
const NO_BAKE: [&str; 2] = ["--bake-seconds", "0"];

#[derive(Serialize)]
struct Traffic {
    before: Figures,
    during: Figures,
    after: Figures,
}

#[derive(Serialize)]
struct StepTime {
    name: String,
    start_seconds: f64,
    end_seconds: f64,
}

#[derive(Serialize)]
struct DeployRun {
    tool: &'static str,
    from_version: String,
    version: String,
    /// From the command's start to its exit.
    wall_seconds: f64,
    /// From the command's start to the first answer of the new version through HAProxy.
    first_new_answer_seconds: Option<f64>,
    /// From the command's start to the last answer of the old version (sent time).
    last_old_answer_seconds: Option<f64>,
    steps: Vec<StepTime>,
    history: Option<HistoryFigures>,
    keep_alive: Traffic,
    close: Traffic,
    failed_requests: usize,
    samples_file: String,
}

/// One deploy's workflow history, read by its event times.
#[derive(Serialize, Clone)]
struct HistoryFigures {
    events: usize,
    /// Workflow started → workflow closed.
    workflow_seconds: f64,
    /// Time covered by at least one running activity: the waits on the real parts.
    in_activities_seconds: f64,
    /// The rest: scheduling, workflow tasks, the gaps between one activity and the next.
    orchestration_seconds: f64,
    /// Each activity type's running time, summed over its runs.
    by_activity: BTreeMap<String, f64>,
}

#[derive(Serialize)]
struct ScalingRun {
    workers: u32,
    /// Empty when the deploy completed; otherwise how it ended, which is a finding too.
    failure: String,
    wall_seconds: f64,
    roll_workers_seconds: f64,
    history: HistoryFigures,
}

#[derive(Serialize)]
struct Rollback {
    /// From `deployctl rollback` to HAProxy sending every new request to the old colour.
    command_to_old_colour_ms: f64,
    failed_requests: usize,
    requests: usize,
}

#[derive(Serialize)]
struct Footprint {
    rss_idle_mib: Vec<f64>,
    rss_under_app_load_mib: Vec<f64>,
    app_workflows_completed: usize,
    app_workflows_per_second: f64,
    /// The pool's CPU time during the stream, less its idle CPU over as long, per workflow.
    cpu_ms_per_app_workflow: f64,
    cpu_ms_per_second_idle: f64,
    /// Container start → the pool's "worker polling" log line, for the newest workers.
    start_to_first_poll_seconds: Vec<f64>,
}

#[derive(Serialize)]
struct Machine {
    date: String,
    commit: String,
    cores: String,
    memory: String,
    docker: String,
}

#[derive(Serialize)]
struct Results {
    machine: Machine,
    connections_per_kind: usize,
    deploys: Vec<DeployRun>,
    rollback: Rollback,
    scaling: Vec<ScalingRun>,
    /// Events in each deployctl deploy's history, in the order they ran.
    history_events_per_deploy: Vec<usize>,
    footprint: Footprint,
}

#[tokio::main]
async fn main() {
    // Relative to the repository: cargo runs a bench from its package's directory.
    let out = repository().join(
        std::env::args()
            .skip(1)
            .find(|a| !a.starts_with('-'))
            .unwrap_or_else(|| "bench/results/latest".into()),
    );
    std::fs::create_dir_all(out.join("samples")).unwrap();
    fresh_stack_on_v1().await;
    let machine = machine();
    println!("machine: {} cores, {}", machine.cores, machine.memory);

    let mut deploys = Vec::new();
    let mut events = Vec::new();
    for round in 0..ROUNDS {
        for tool in ["deployctl", "manual"] {
            let run = deploy_under_load(tool, &out, round).await;
            if let Some(history) = &run.history {
                events.push(history.events);
            }
            print_run(&run);
            deploys.push(run);
        }
    }
    let rollback = rollback_during_the_bake().await;
    println!(
        "rollback: command → old colour {:.0} ms, {} failed of {} requests",
        rollback.command_to_old_colour_ms, rollback.failed_requests, rollback.requests
    );
    // The footprint of the stack's own pool (2 workers), before the scaling runs resize it.
    let footprint = footprint().await;
    let mut scaling = Vec::new();
    for workers in WORKER_COUNTS {
        let run = deploy_with_workers(workers).await;
        events.push(run.history.events);
        println!(
            "{workers} workers: deploy {:.1} s, worker roll {:.1} s, {} events {}",
            run.wall_seconds, run.roll_workers_seconds, run.history.events, run.failure
        );
        scaling.push(run);
    }
    // Back to the stack's own worker count, for whatever runs next.
    let output = deploy_with(other_version().await, &["--workers", "2"]).await;
    assert!(output.status.success(), "{}", text(&output));

    let results = Results {
        machine,
        connections_per_kind: CONNECTIONS,
        deploys,
        rollback,
        scaling,
        history_events_per_deploy: events,
        footprint,
    };
    let file = out.join("deploy.json");
    std::fs::write(&file, serde_json::to_string_pretty(&results).unwrap()).unwrap();
    println!("wrote {}", file.display());
}

/// One deploy to the other version, by deployctl or by the manual script, under both loads.
async fn deploy_under_load(tool: &'static str, out: &Path, round: usize) -> DeployRun {
    let from_version = served_version().await;
    let version = other_version().await.to_string();
    let idle = if live_servers().await == ["blue"] {
        "green"
    } else {
        "blue"
    };
    let url = format!("{FRONTEND}/version");
    let keep_alive = Load::start(&url, CONNECTIONS, true, DEPLOY_LIMIT);
    let close = Load::start(&url, CONNECTIONS, false, DEPLOY_LIMIT);
    tokio::time::sleep(SETTLE).await;
    let (wall, started) = (SystemTime::now(), Instant::now());
    let (steps, history, wall_seconds) = match tool {
        "deployctl" => {
            let output = deploy_with(&version, &NO_BAKE).await;
            let wall_seconds = started.elapsed().as_secs_f64();
            assert!(output.status.success(), "{}", text(&output));
            let status = status();
            let steps = status
                .steps
                .iter()
                .filter(|s| !s.started_at.is_empty() && !s.finished_at.is_empty())
                .map(|s| StepTime {
                    name: s.name.clone(),
                    start_seconds: seconds_since(wall, &s.started_at),
                    end_seconds: seconds_since(wall, &s.finished_at),
                })
                .collect();
            let history = history_figures(&latest_run_id());
            (steps, Some(history), wall_seconds)
        }
        _ => {
            let script = repository().join("bench/manual-deploy.sh");
            let arguments = [version.clone(), idle.to_string()];
            let output = tokio::task::spawn_blocking(move || {
                Command::new(script).args(arguments).output().unwrap()
            })
            .await
            .unwrap();
            let wall_seconds = started.elapsed().as_secs_f64();
            assert!(output.status.success(), "{}", text(&output));
            let stdout = String::from_utf8_lossy(&output.stdout);
            (manual_steps(&stdout, wall), None, wall_seconds)
        }
    };
    tokio::time::sleep(SETTLE).await;
    let (keep_alive, close) = (keep_alive.finish().await, close.finish().await);
    let switch = steps
        .iter()
        .find(|s| s.name == SWITCH_TRAFFIC)
        .expect("a switch step");
    let window = (
        started + Duration::from_secs_f64(switch.start_seconds),
        started + Duration::from_secs_f64(switch.end_seconds),
    );
    let traffic = |report: &Report| Traffic {
        before: report.window(report.started, window.0),
        during: report.window(window.0, window.1),
        after: report.window(window.1, Instant::now()),
    };
    let samples_file = format!("samples/{round}-{tool}.csv");
    write_samples(&out.join(&samples_file), started, &keep_alive, &close);
    let answers = |report: &Report, version: &str| -> Vec<f64> {
        report
            .samples
            .iter()
            .filter(|s| s.body.as_deref() == Some(version))
            .map(|s| {
                (report.started + s.at)
                    .saturating_duration_since(started)
                    .as_secs_f64()
            })
            .collect()
    };
    let new_answers: Vec<f64> = [&keep_alive, &close]
        .iter()
        .flat_map(|r| answers(r, &version))
        .collect();
    let old_answers: Vec<f64> = [&keep_alive, &close]
        .iter()
        .flat_map(|r| answers(r, &from_version))
        .collect();
    assert!(
        !new_answers.is_empty(),
        "the frontend never served {version}"
    );
    let (keep_alive, close) = (traffic(&keep_alive), traffic(&close));
    let failed = |t: &Traffic| {
        [&t.before, &t.during, &t.after]
            .iter()
            .map(|f| f.non_2xx + f.socket_errors)
            .sum::<usize>()
    };
    DeployRun {
        tool,
        from_version,
        failed_requests: failed(&keep_alive) + failed(&close),
        first_new_answer_seconds: new_answers.iter().copied().reduce(f64::min),
        last_old_answer_seconds: old_answers.iter().copied().reduce(f64::max),
        version,
        wall_seconds,
        steps,
        history,
        keep_alive,
        close,
        samples_file,
    }
}

fn print_run(run: &DeployRun) {
    println!(
        "{} {} → {}: {:.1} s, first answer of the new version at {:.1} s, {} failed requests",
        run.tool,
        run.from_version,
        run.version,
        run.wall_seconds,
        run.first_new_answer_seconds.unwrap_or(f64::NAN),
        run.failed_requests
    );
    println!(
        "  during the switch: keep-alive {}; close {}",
        run.keep_alive.during, run.close.during
    );
    if let Some(history) = &run.history {
        println!(
            "  history: {:.2} s in all, {:.2} s in activities, {:.2} s orchestration, {} events",
            history.workflow_seconds,
            history.in_activities_seconds,
            history.orchestration_seconds,
            history.events
        );
    }
}

/// The manual script's "STEP <name> <start|end> <unix ms>" lines, as steps timed from `wall`.
fn manual_steps(stdout: &str, wall: SystemTime) -> Vec<StepTime> {
    let origin = wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut starts = BTreeMap::new();
    let mut steps = Vec::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("STEP ") else {
            continue;
        };
        let mut words = rest.rsplitn(3, ' ');
        let (Some(ms), Some(edge), Some(name)) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        let at: f64 = ms.parse::<f64>().unwrap() / 1000.0;
        match edge {
            "start" => {
                starts.insert(name.to_string(), at);
            }
            _ => steps.push((name.to_string(), starts[name], at)),
        }
    }
    steps
        .into_iter()
        .map(|(name, start, end)| StepTime {
            name,
            start_seconds: start - origin,
            end_seconds: end - origin,
        })
        .collect()
}

fn seconds_since(wall: SystemTime, timestamp: &str) -> f64 {
    let at: SystemTime = chrono::DateTime::parse_from_rfc3339(timestamp)
        .expect("RFC 3339")
        .into();
    match at.duration_since(wall) {
        Ok(after) => after.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    }
}

/// Every request of both loads: seconds since the command started, latency, status, kind and
/// the version that answered, for the plot.
fn write_samples(file: &Path, origin: Instant, keep_alive: &Report, close: &Report) {
    let mut csv = std::io::BufWriter::new(std::fs::File::create(file).unwrap());
    writeln!(csv, "seconds,latency_ms,status,keep_alive,version").unwrap();
    for (report, kind) in [(keep_alive, 1), (close, 0)] {
        for sample in &report.samples {
            let sent = report.started + sample.at;
            let seconds = if sent >= origin {
                sent.duration_since(origin).as_secs_f64()
            } else {
                -origin.duration_since(sent).as_secs_f64()
            };
            writeln!(
                csv,
                "{seconds:.4},{:.3},{},{kind},{}",
                sample.latency.as_secs_f64() * 1000.0,
                sample.status,
                sample.body.as_deref().unwrap_or("")
            )
            .unwrap();
        }
    }
}

fn latest_run_id() -> String {
    let described = temporal_json(&["workflow", "describe", "--workflow-id", "deploy-local"]);
    described["workflowExecutionInfo"]["execution"]["runId"]
        .as_str()
        .expect("a run id")
        .to_string()
}

/// Splits a deploy's wall time into time inside activities and the orchestration around them.
fn history_figures(run_id: &str) -> HistoryFigures {
    let history = temporal_json(&[
        "workflow",
        "show",
        "--workflow-id",
        "deploy-local",
        "--run-id",
        run_id,
    ]);
    let events = history["events"].as_array().cloned().unwrap_or_default();
    let time = |event: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(event["eventTime"].as_str().unwrap())
            .unwrap()
            .timestamp_micros() as f64
            / 1e6
    };
    let (first, last) = (time(&events[0]), time(events.last().unwrap()));
    let mut activity_types = BTreeMap::new();
    let mut started = BTreeMap::new();
    let mut intervals = Vec::new();
    let mut by_activity = BTreeMap::<String, f64>::new();
    for event in &events {
        let id = event["eventId"].as_str().unwrap_or_default().to_string();
        if let Some(name) =
            event["activityTaskScheduledEventAttributes"]["activityType"]["name"].as_str()
        {
            activity_types.insert(id, name.to_string());
            continue;
        }
        if let Some(scheduled) =
            event["activityTaskStartedEventAttributes"]["scheduledEventId"].as_str()
        {
            started.insert(scheduled.to_string(), time(event));
            continue;
        }
        let closed = [
            "activityTaskCompletedEventAttributes",
            "activityTaskFailedEventAttributes",
            "activityTaskTimedOutEventAttributes",
            "activityTaskCanceledEventAttributes",
        ]
        .iter()
        .find_map(|key| event[*key]["scheduledEventId"].as_str());
        if let Some(scheduled) = closed
            && let Some(start) = started.get(scheduled)
        {
            let end = time(event);
            intervals.push((*start, end));
            let name = activity_types.get(scheduled).cloned().unwrap_or_default();
            *by_activity.entry(name).or_default() += end - start;
        }
    }
    let in_activities = union_length(&mut intervals);
    HistoryFigures {
        events: events.len(),
        workflow_seconds: last - first,
        in_activities_seconds: in_activities,
        orchestration_seconds: (last - first) - in_activities,
        by_activity,
    }
}

/// The length of the union of intervals (activities may run side by side).
fn union_length(intervals: &mut [(f64, f64)]) -> f64 {
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for &(start, end) in intervals.iter() {
        current = match current {
            Some((from, to)) if start <= to => Some((from, to.max(end))),
            Some((from, to)) => {
                total += to - from;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + current.map(|(from, to)| to - from).unwrap_or_default()
}

/// `rollback` during the bake, under load: from the command until HAProxy sends every new
/// request to the old colour.
async fn rollback_during_the_bake() -> Rollback {
    let load = Load::start(FRONTEND, CONNECTIONS * 2, true, DEPLOY_LIMIT);
    let started = deployctl(&[
        "start",
        "--version",
        other_version().await,
        "--bake-seconds",
        "60",
    ]);
    assert!(started.status.success(), "{}", text(&started));
    await_phase(&[Phase::Baking]).await;
    let old_colour = if live_servers().await == ["blue"] {
        "green"
    } else {
        "blue"
    };
    let asked = Instant::now();
    let rollback =
        tokio::task::spawn_blocking(|| deployctl(&["rollback", "--reason", "bench", "--wait"]));
    while live_servers().await != [old_colour] {
        assert!(asked.elapsed() < DEPLOY_LIMIT, "traffic never returned");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let flipped = asked.elapsed();
    let output = rollback.await.unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    let figures = load.finish().await.figures();
    Rollback {
        command_to_old_colour_ms: flipped.as_secs_f64() * 1000.0,
        failed_requests: figures.non_2xx + figures.socket_errors,
        requests: figures.requests,
    }
}

/// A deploy that rolls `workers` workers: a first deploy brings the pool to that size, the
/// second (measured) one rolls that many.
async fn deploy_with_workers(workers: u32) -> ScalingRun {
    let count = workers.to_string();
    let options = ["--workers", count.as_str(), NO_BAKE[0], NO_BAKE[1]];
    let running = service_images("ecomweb_worker")
        .await
        .iter()
        .filter(|(_, _, running)| *running)
        .count();
    if running != workers as usize {
        let output = deploy_with(other_version().await, &options).await;
        if !output.status.success() {
            println!(
                "{workers} workers: the deploy to that size failed: {}",
                text(&output)
            );
        }
    }
    let started = Instant::now();
    let output = deploy_with(other_version().await, &options).await;
    let wall_seconds = started.elapsed().as_secs_f64();
    let status = status();
    let failure = if output.status.success() {
        String::new()
    } else {
        format!("{}: {}", status.failed_step, status.error)
    };
    let roll = step(&status, deployctl_workflows::plan::ROLL_WORKERS);
    ScalingRun {
        workers,
        failure,
        wall_seconds,
        roll_workers_seconds: seconds_since(
            chrono::DateTime::parse_from_rfc3339(&roll.started_at)
                .unwrap()
                .into(),
            &roll.finished_at,
        ),
        history: history_figures(&latest_run_id()),
    }
}

/// The pool's RSS and CPU, idle and under a stream of the app's `ProcessOrder` workflows, and
/// how soon a started worker polls.
async fn footprint() -> Footprint {
    const STREAM: Duration = Duration::from_secs(20);
    const PACE: Duration = Duration::from_millis(50);
    let docker = docker().await;
    let rss = || worker_rss().into_iter().map(|(_, mib)| mib).collect();
    let start_to_first_poll_seconds = start_to_first_poll();
    let rss_idle_mib = rss();
    let idle_cpu = pool_cpu_seconds(&docker).await;
    tokio::time::sleep(STREAM).await;
    let cpu_ms_per_second_idle =
        (pool_cpu_seconds(&docker).await - idle_cpu) * 1000.0 / STREAM.as_secs_f64();

    let client = temporal().await;
    let prefix = format!("bench-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    let cpu_before = pool_cpu_seconds(&docker).await;
    let stream_started = Instant::now();
    let mut pace = tokio::time::interval(PACE);
    let mut started = 0;
    while stream_started.elapsed() < STREAM {
        pace.tick().await;
        let id = format!("{prefix}-order-{started}");
        if start_app_workflow(&client, "ProcessOrder", &id, serde_json::json!(id))
            .await
            .is_ok()
        {
            started += 1;
        }
    }
    let pool = database().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let completed = loop {
        let (count,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM orders WHERE customer LIKE $1 || '-order-%'")
                .bind(&prefix)
                .fetch_one(&pool)
                .await
                .unwrap();
        if count as usize >= started || Instant::now() > deadline {
            break count as usize;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let busy = stream_started.elapsed().as_secs_f64();
    let rss_under_app_load_mib = rss();
    let cpu = pool_cpu_seconds(&docker).await - cpu_before;
    let net_cpu_ms = cpu * 1000.0 - cpu_ms_per_second_idle * busy;
    Footprint {
        rss_idle_mib,
        rss_under_app_load_mib,
        app_workflows_completed: completed,
        app_workflows_per_second: completed as f64 / busy,
        cpu_ms_per_app_workflow: net_cpu_ms / completed.max(1) as f64,
        cpu_ms_per_second_idle,
        start_to_first_poll_seconds,
    }
}

/// CPU time used so far by the pool's running containers, in seconds (Docker's stats).
async fn pool_cpu_seconds(docker: &bollard::Docker) -> f64 {
    use futures::StreamExt;
    let mut total = 0.0;
    for (name, _, running) in service_images("ecomweb_worker").await {
        if !running {
            continue;
        }
        let options = bollard::query_parameters::StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        if let Some(Ok(stats)) = docker.stats(&name, Some(options)).next().await {
            let nanoseconds = stats
                .cpu_stats
                .and_then(|cpu| cpu.cpu_usage)
                .and_then(|usage| usage.total_usage)
                .unwrap_or_default();
            total += nanoseconds as f64 / 1e9;
        }
    }
    total
}

/// For each running worker: from Docker's start time to its "worker polling" log line.
fn start_to_first_poll() -> Vec<f64> {
    running_workers()
        .iter()
        .map(String::as_str)
        .filter_map(|name| {
            let started = Command::new("docker")
                .args(["inspect", "-f", "{{.State.StartedAt}}", name])
                .output()
                .ok()?;
            let started = chrono::DateTime::parse_from_rfc3339(
                String::from_utf8_lossy(&started.stdout).trim(),
            )
            .ok()?;
            let logs = Command::new("docker")
                .args(["logs", "--timestamps", name])
                .output()
                .ok()?;
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
            let line = all.lines().find(|l| l.contains("worker polling"))?;
            let polled = chrono::DateTime::parse_from_rfc3339(line.split(' ').next()?).ok()?;
            Some((polled - started).num_microseconds()? as f64 / 1e6)
        })
        .collect()
}

fn machine() -> Machine {
    let run = |program: &str, arguments: &[&str]| {
        Command::new(program)
            .args(arguments)
            .current_dir(repository())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0))
        .unwrap_or_default();
    Machine {
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        commit: run("git", &["rev-parse", "--short", "HEAD"]),
        cores: run("nproc", &[]),
        memory,
        docker: run("docker", &["version", "--format", "{{.Server.Version}}"]),
    }
}
