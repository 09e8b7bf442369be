//! Trust boundaries, checked on the running stack: no secret reaches Temporal's history, no
//! published port is an admin interface, and the workers reach Docker only through a proxy
//! that refuses what a deploy never does.

mod support;

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::Command,
    time::Duration,
};

use support::*;

/// The app's database password, as the stack's `.env.api` gives it to every app container.
fn database_password() -> String {
    let env = std::fs::read_to_string(repository().join(".env.api")).unwrap();
    let url = env
        .lines()
        .find_map(|line| line.strip_prefix("DATABASE_URL="))
        .expect("DATABASE_URL in .env.api");
    let credentials = url.split_once("://").unwrap().1.split_once('@').unwrap().0;
    let password = credentials.split_once(':').unwrap().1.to_string();
    assert!(
        password.len() >= 8,
        "a password this short proves nothing: {password}"
    );
    password
}

/// `leaky` fails its migration and prints DATABASE_URL, password and all, both in its log and
/// in Prisma's `logs` column. The deploy fails and names the migration; the password appears
/// nowhere in the workflow's history (`temporal workflow show --output json`) or its status.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_that_prints_its_database_password_leaves_no_trace_of_it_in_history() {
    let _turn = exclusive();
    settled_stack().await;
    let password = database_password();
    let output = deploy("leaky").await;
    let pool = database().await;
    let leaked: String = sqlx::query_scalar(
        "SELECT logs FROM _prisma_migrations WHERE logs LIKE '%DATABASE_URL=%' \
         ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    resolve_failed_migrations().await;
    assert!(
        leaked.contains(&password),
        "the release did not leak: {leaked}"
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("0003_broken"), "{}", text(&output));
    assert!(!text(&output).contains(&password), "{}", text(&output));

    let history = compose(&[
        "exec",
        "-T",
        "temporal",
        "/temporal",
        "workflow",
        "show",
        "--workflow-id",
        "deploy-local",
        "--output",
        "json",
        "--address",
        "127.0.0.1:7233",
    ]);
    let history = String::from_utf8_lossy(&history.stdout);
    assert!(
        history.contains("0003_broken"),
        "the failure is not in history"
    );
    assert!(
        history.contains(":****@postgres"),
        "the failure should quote the URL, masked"
    );
    assert!(
        !history.contains(&password),
        "the password is in the history"
    );
    let status = deployctl(&["status", "--json"]);
    assert!(!text(&status).contains(&password), "{}", text(&status));
    assert!(
        text(&status).contains(":****@postgres"),
        "{}",
        text(&status)
    );
}

/// Every port the stack publishes is bound to 127.0.0.1, and none answers as HAProxy's Runtime
/// API or as the Docker API.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_published_port_is_loopback_and_none_is_an_admin_interface() {
    let _turn = exclusive();
    settled_stack().await;
    let docker = docker().await;
    let mut published = Vec::new();
    for container in list_project(&docker).await {
        for port in container.ports.clone().unwrap_or_default() {
            let Some(public) = port.public_port else {
                continue;
            };
            let ip = port.ip.clone().unwrap_or_default();
            assert!(
                ip == "127.0.0.1",
                "{} publishes {} on {ip:?}, not on loopback",
                name_of(&container),
                port.private_port
            );
            published.push((name_of(&container), port.private_port, public));
        }
    }
    published.sort();
    published.dedup();
    let private: Vec<u16> = published.iter().map(|(_, private, _)| *private).collect();
    for admin in [9999, 2375, 2376] {
        assert!(
            !private.contains(&admin),
            "admin port {admin} is published: {published:?}"
        );
    }
    assert!(
        private.contains(&8080) && private.contains(&7233),
        "{published:?}"
    );
    for (container, _, public) in &published {
        let runtime_api = ask(*public, b"show info\n");
        assert!(
            !runtime_api.contains("Uptime_sec") && !runtime_api.contains("Pid:"),
            "{container} on {public} answers as HAProxy's Runtime API: {runtime_api}"
        );
        let docker_api = ask(*public, b"GET /_ping HTTP/1.0\r\n\r\n").to_lowercase();
        assert!(
            !docker_api.contains("api-version"),
            "{container} on {public} answers as the Docker API: {docker_api}"
        );
    }
}

/// What a port answers to `request` within a second (nothing, for a port that waits for more).
fn ask(port: u16, request: &[u8]) -> String {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The HTTP status docker_proxy gives `method path` (with a JSON body, if any), asked from
/// inside its own container: it is not published, only the workers' network reaches it.
fn through_the_proxy(method: &str, path: &str, body: Option<&str>) -> String {
    let container = format!("{PROJECT}_docker_proxy_1");
    let url = format!("http://127.0.0.1:2375{path}");
    let mut arguments = vec![
        "exec",
        &container,
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        method,
    ];
    if let Some(body) = body {
        arguments.extend([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ]);
    }
    arguments.push(&url);
    let output = Command::new("docker").args(&arguments).output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The workers hold no Docker socket: they reach Docker through docker_proxy, which passes
/// what a deploy does and refuses the rest, including a create that would reach the host.
/// No container mounts the project directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_reach_docker_only_through_a_proxy_that_refuses_what_a_deploy_never_does() {
    let _turn = exclusive();
    settled_stack().await;
    let docker = docker().await;
    let project = std::fs::canonicalize(repository()).unwrap();
    for container in list_project(&docker).await {
        let name = name_of(&container);
        for mount in container.mounts.clone().unwrap_or_default() {
            let source = mount.source.clone().unwrap_or_default();
            if source.ends_with("docker.sock") {
                assert!(
                    name.contains("docker_proxy"),
                    "{name} mounts the Docker socket"
                );
            }
            assert!(
                std::path::Path::new(&source) != project,
                "{name} mounts the project directory"
            );
        }
    }

    assert_eq!(
        through_the_proxy("GET", "/v1.41/containers/json", None),
        "200"
    );
    assert_eq!(
        through_the_proxy("GET", "/v1.41/containers/ecomweb_cron/json", None),
        "200"
    );
    let image = "{\"Image\":\"ecomweb-api:v1\",\"Cmd\":[\"cron\"]";
    for refused in [
        (
            "POST",
            "/v1.41/containers/ecomweb_cron/exec",
            Some("{\"Cmd\":[\"id\"]}".to_string()),
        ),
        ("POST", "/v1.41/images/create?fromImage=alpine", None),
        ("GET", "/v1.41/volumes", None),
        (
            "POST",
            "/v1.41/containers/create?name=deployctl-escape",
            Some(format!("{image},\"HostConfig\":{{\"Privileged\":true}}}}")),
        ),
        (
            "POST",
            "/v1.41/containers/create?name=deployctl-escape",
            Some(format!(
                "{image},\"HostConfig\":{{\"Binds\":[\"/:/host\"]}}}}"
            )),
        ),
        (
            "POST",
            "/v1.41/containers/create?name=deployctl-escape",
            Some(format!(
                "{image},\"HostConfig\":{{\"Binds\":[\"/var/run/docker.sock:/var/run/docker.sock\"]}}}}"
            )),
        ),
    ] {
        let (method, path, body) = refused;
        assert_eq!(
            through_the_proxy(method, path, body.as_deref()),
            "403",
            "{method} {path} {body:?}"
        );
    }
    let escaped = docker
        .inspect_container(
            "deployctl-escape",
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await;
    assert!(escaped.is_err(), "a refused create made a container");
}
