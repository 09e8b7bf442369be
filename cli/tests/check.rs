//! `deployctl check`: the seed's monitoring checklist passes on a healthy stack, and names the
//! failing item, with exit 1, when the cron is doubled or a worker is stopped.

mod support;

use std::process::Command;

use support::*;

fn docker_cli(arguments: &[&str]) -> String {
    let output = Command::new("docker").args(arguments).output().unwrap();
    assert!(
        output.status.success(),
        "docker {arguments:?}: {}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The checklist's JSON and its exit code.
fn check() -> (Option<i32>, serde_json::Value) {
    let output = deployctl(&["check", "--json"]);
    let document = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", text(&output)));
    (output.status.code(), document)
}

fn item<'a>(checklist: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    checklist["items"]
        .as_array()
        .and_then(|items| items.iter().find(|item| item["name"] == name))
        .unwrap_or_else(|| panic!("no item {name}: {checklist}"))
}

/// A second container of the cron's Compose service (as `docker compose run ecomweb_cron`
/// would leave), running something harmless so that no job really runs twice; removed on drop.
struct SecondCron(String);

impl SecondCron {
    fn start() -> Self {
        let id = docker_cli(&[
            "run",
            "-d",
            "--label",
            &format!("com.docker.compose.project={PROJECT}"),
            "--label",
            "com.docker.compose.service=ecomweb_cron",
            "--name",
            "ecomweb_cron_second",
            "--entrypoint",
            "sleep",
            "redis:7",
            "600",
        ]);
        Self(id)
    }
}

impl Drop for SecondCron {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn check_passes_on_a_healthy_stack_and_names_a_doubled_cron_and_a_stopped_worker() {
    let _turn = exclusive();
    settled_stack().await;

    let (code, healthy) = check();
    let names: Vec<&str> = healthy["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "api health",
            "haproxy stats",
            "cron",
            "workers",
            "redis",
            "migrations"
        ]
    );
    for name in &names {
        assert_eq!(item(&healthy, name)["passed"], true, "{healthy}");
    }
    assert_eq!(code, Some(0), "{healthy}");
    assert_eq!(healthy["exit_code"], 0);
    assert!(
        item(&healthy, "haproxy stats")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("carries the traffic")),
        "{healthy}"
    );

    // Two checks at once: the second joins the first's run (one fixed workflow id), and both
    // answer.
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(check);
        let second = scope.spawn(check);
        (first.join().unwrap(), second.join().unwrap())
    });
    assert_eq!(first.0, Some(0), "{}", first.1);
    assert_eq!(second.0, Some(0), "{}", second.1);
    assert_eq!(first.1["items"], second.1["items"]);

    // The cron twice: that item fails and names both; every other item still passes.
    {
        let _second = SecondCron::start();
        let (code, doubled) = check();
        assert_eq!(code, Some(1), "{doubled}");
        let cron = item(&doubled, "cron");
        assert_eq!(cron["passed"], false, "{doubled}");
        let detail = cron["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("2 crons run at once") && detail.contains("ecomweb_cron_second"),
            "{detail}"
        );
        assert_eq!(item(&doubled, "workers")["passed"], true, "{doubled}");
    }

    // A worker stopped: the workers item fails and names it; started again, all pass.
    let worker = docker_ps("ecomweb_worker", &["--format", "{{.Names}}"])
        .into_iter()
        .max()
        .expect("a worker");
    docker_cli(&["stop", &worker]);
    let (code, stopped) = check();
    docker_cli(&["start", &worker]);
    assert_eq!(code, Some(1), "{stopped}");
    let workers = item(&stopped, "workers");
    assert_eq!(workers["passed"], false, "{stopped}");
    assert!(
        workers["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("1 of 2 workers run") && d.contains(&worker)),
        "{stopped}"
    );
    assert_eq!(item(&stopped, "cron")["passed"], true, "{stopped}");
    wait_until_healthy().await;
}
