//! `deployctl serve` and notifications, on the real stack.
//!
//! While a deploy started by hand waits at its gate, signed pushes arrive: a bad signature, an
//! expired timestamp, a replay and an oversized body are refused before anything reaches
//! Temporal, and five good pushes queue up. Once the held deploy is approved, exactly one
//! follow-up deploy runs, of the newest tag. Every turn of both deploys reaches the
//! environment's `notify_url`: a receiver on the project's network that fails each first
//! attempt, so each notification is seen retried.

mod support;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use deployctl_proto::v1::{Phase, PushQueue};
use deployctl_workflows::PushQueueWorkflow;
use hmac::{Hmac, Mac};
use support::*;
use temporalio_client::{WorkflowGetResultOptions, WorkflowQueryOptions};

const SECRET: &str = "a-test-secret-of-enough-bytes";
const RECEIVER: &str = "deployctl_notify_receiver";

/// Answers 503 to the first delivery of each notification and 200 to the next, printing each
/// attempt as one JSON line.
const RECEIVER_SCRIPT: &str = r#"
import http.server, json, sys
attempts = {}
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        key = (body.get('run_id'), body.get('event'))
        attempts[key] = attempts.get(key, 0) + 1
        print(json.dumps({'attempt': attempts[key], 'body': body}), flush=True)
        self.send_response(503 if attempts[key] == 1 else 200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(('0.0.0.0', 8080), Receiver).serve_forever()
"#;

/// The notification receiver: a container on the project's own network.
struct Receiver;

impl Receiver {
    fn start() -> Self {
        let _ = Command::new("docker").args(["rm", "-f", RECEIVER]).output();
        let output = Command::new("docker")
            .args([
                "run",
                "-d",
                "--name",
                RECEIVER,
                "--network",
                "deployctl_default",
                "--network-alias",
                "notify-receiver",
                "--entrypoint",
                "python3",
                "deployctl/debian-infra:bookworm",
                "-c",
                RECEIVER_SCRIPT,
            ])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        Receiver
    }

    /// Every attempt so far: (attempt, notification).
    fn attempts(&self) -> Vec<(u64, serde_json::Value)> {
        let output = Command::new("docker")
            .args(["logs", RECEIVER])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .map(|line| (line["attempt"].as_u64().unwrap_or(0), line["body"].clone()))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", RECEIVER]).output();
    }
}

/// The worker's environments file, with `local` given a notify_url, put back on drop.
struct NotifyingEnvironment {
    file: std::path::PathBuf,
    before: String,
}

impl NotifyingEnvironment {
    fn set() -> Self {
        let file = repository().join("state/environments.toml");
        let before = std::fs::read_to_string(&file).unwrap_or_default();
        // `local` is the embedded file's last table: the line joins it.
        let local = include_str!("../../activities/src/environments.toml");
        let notifying = format!("{local}notify_url = \"http://notify-receiver:8080/deploys\"\n");
        std::fs::write(&file, notifying).unwrap();
        Self { file, before }
    }
}

impl Drop for NotifyingEnvironment {
    fn drop(&mut self) {
        std::fs::write(&self.file, &self.before).unwrap();
    }
}

/// `deployctl serve --json` on a free port of 127.0.0.1, and the events it printed.
struct Serve {
    child: Child,
    address: String,
    events: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Serve {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_deployctl"))
            .current_dir(repository())
            .args([
                "serve",
                "--json",
                "--listen",
                "127.0.0.1:0",
                "--bake-seconds",
                "2",
            ])
            .env("TEMPORAL_ADDRESS", "127.0.0.1:7233")
            .env("DEPLOYCTL_WEBHOOK_SECRET", SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("serve printed nothing").unwrap();
        let listening: serde_json::Value =
            serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
        assert_eq!(listening["event"], "listening", "{listening}");
        assert_eq!(listening["queue"], "pushes-local", "{listening}");
        let address = listening["address"].as_str().unwrap().to_string();
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let collected = events.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let event = serde_json::from_str(&line).expect("one JSON document per line");
                collected.lock().unwrap().push(event);
            }
        });
        Self {
            child,
            address,
            events,
        }
    }

    /// The events `serve` printed for a delivery.
    fn events_of(&self, delivery: &str) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|event| event["delivery"] == delivery)
            .map(|event| event["event"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Waits until `serve` has printed these events for a delivery: its answer reaches the
    /// test before the reader thread may have read the event's line.
    async fn await_events(&self, delivery: &str, expected: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.events_of(delivery) != expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            self.events_of(delivery),
            expected,
            "the events of {delivery}"
        );
    }

    /// POSTs a body with the given headers; the status and the JSON answer.
    async fn post(
        &self,
        body: &[u8],
        timestamp: i64,
        delivery: &str,
        signature: &str,
    ) -> (u16, serde_json::Value) {
        let answer = reqwest::Client::new()
            .post(format!("http://{}/push", self.address))
            .header("X-Deployctl-Timestamp", timestamp.to_string())
            .header("X-Deployctl-Delivery", delivery)
            .header("X-Deployctl-Signature", signature)
            .header("Content-Type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let document = answer.json().await.unwrap_or(serde_json::Value::Null);
        (status, document)
    }

    /// A push of `tag`, signed now with the shared secret.
    async fn push(&self, tag: &str, delivery: &str) -> (u16, serde_json::Value) {
        let body = serde_json::to_vec(&serde_json::json!({"tag": tag, "pushed_by": "ci"})).unwrap();
        let now = chrono::Utc::now().timestamp();
        self.post(&body, now, delivery, &sign(SECRET.as_bytes(), now, &body))
            .await
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a pusher sends: `sha256=` and the hex HMAC-SHA256 of `TIMESTAMP.BODY`.
fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The notifications of one run, in the order they were first received.
fn events_of(receiver: &Receiver, run_id: &str) -> Vec<String> {
    let mut events: Vec<String> = Vec::new();
    for (_, body) in receiver.attempts() {
        let event = body["event"].as_str().unwrap_or_default().to_string();
        if body["run_id"] == run_id && !events.contains(&event) {
            events.push(event);
        }
    }
    events
}

/// Waits until every notification of the run has been delivered (its second attempt).
async fn delivered(receiver: &Receiver, run_id: &str, expected: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let attempts = receiver.attempts();
        let delivered: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|event| {
                attempts.iter().any(|(attempt, body)| {
                    *attempt == 2 && body["run_id"] == run_id && body["event"] == *event
                })
            })
            .collect();
        if delivered.len() == expected.len() {
            assert_eq!(events_of(receiver, run_id), expected, "in this order");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "run {run_id}: {expected:?} not all delivered; the receiver saw {attempts:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushes_during_a_deploy_start_one_follow_up_deploy_of_the_newest_tag() {
    let _turn = exclusive();
    settled_stack().await;
    let first = served_version().await;
    let second = other_version().await.to_string();
    let receiver = Receiver::start();
    let _environment = NotifyingEnvironment::set();
    let serve = Serve::start();
    let client = temporal().await;
    let run = std::process::id();

    // A deploy started by hand, held at its gate.
    let started = deployctl(&["start", "--version", &second, "--approve-before-switch"]);
    assert!(started.status.success(), "{}", text(&started));
    let held = await_phase(&[Phase::AwaitingApproval]).await;

    // Refused before anything reaches Temporal.
    let body = br#"{"tag": "v9.9.9"}"#;
    let now = chrono::Utc::now().timestamp();
    let forged = sign(b"not-the-shared-secret", now, body);
    let (code, answer) = serve
        .post(body, now, &format!("{run}-forged"), &forged)
        .await;
    assert_eq!(code, 401, "a bad signature: {answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("signature"),
        "{answer}"
    );
    let old = now - 3600;
    let expired = sign(SECRET.as_bytes(), old, body);
    let (code, answer) = serve.post(body, old, &format!("{run}-old"), &expired).await;
    assert_eq!(code, 401, "an expired delivery: {answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("window"),
        "{answer}"
    );
    let huge = vec![b' '; 100 * 1024];
    let (code, _) = serve
        .post(
            &huge,
            now,
            &format!("{run}-huge"),
            &sign(SECRET.as_bytes(), now, &huge),
        )
        .await;
    assert_eq!(code, 413, "a body over the limit");

    // Five good pushes while the deploy waits: the newest is the version live before it.
    let tags = ["v9.0.1", "v9.0.2", "v9.0.3", "v9.0.4", first.as_str()];
    for (number, tag) in tags.iter().enumerate() {
        let (code, answer) = serve.push(tag, &format!("{run}-{number}")).await;
        assert_eq!(code, 202, "push of {tag}: {answer}");
        assert_eq!(answer["queue"], "pushes-local", "{answer}");
    }
    // A replay of a good delivery, byte for byte.
    let replayed =
        serde_json::to_vec(&serde_json::json!({"tag": "v9.0.3", "pushed_by": "ci"})).unwrap();
    let at = chrono::Utc::now().timestamp();
    let signature = sign(SECRET.as_bytes(), at, &replayed);
    let (code, answer) = serve
        .post(&replayed, at, &format!("{run}-2"), &signature)
        .await;
    assert_eq!(code, 409, "a replayed delivery: {answer}");
    serve
        .await_events(&format!("{run}-2"), &["accepted", "refused"])
        .await;
    serve
        .await_events(&format!("{run}-forged"), &["refused"])
        .await;

    let queue = client.get_workflow_handle::<PushQueueWorkflow>("pushes-local");
    let waiting: PushQueue = queue
        .query(
            PushQueueWorkflow::status,
            (),
            WorkflowQueryOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(waiting.pending.as_ref().unwrap().tag, first, "{waiting:?}");
    assert_eq!(waiting.superseded.len(), 4, "{waiting:?}");
    assert!(
        waiting.deployed.is_empty(),
        "nothing starts while a deploy runs: {waiting:?}"
    );
    assert_eq!(
        status().version,
        second,
        "the held deploy is still the one running"
    );
    // `deployctl queue` says the same, in words and as JSON.
    let words = shown_queue();
    assert!(
        words.contains(&format!(
            "next        {first} (delivery {run}-4, requested by ci"
        )),
        "{words}"
    );
    assert_eq!(words.matches("\n  superseded  v9.0.").count(), 4, "{words}");
    let shown = deployctl(&["queue", "--json"]);
    assert!(shown.status.success(), "{}", text(&shown));
    let document: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(document["exit_code"], 0, "{document}");
    assert_eq!(document["environment"], "local", "{document}");
    assert_eq!(
        document["queue"]["pending"]["tag"],
        first.as_str(),
        "{document}"
    );

    // The held deploy goes on; then the queue deploys the newest push, and only it.
    let approved = deployctl(&["approve", "--by", "alice"]);
    assert!(approved.status.success(), "{}", text(&approved));
    let ended: PushQueue = tokio::time::timeout(
        DEPLOY_LIMIT,
        queue.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("the queue ended")
    .unwrap();
    assert_eq!(
        ended.deployed.len(),
        1,
        "exactly one follow-up deploy: {ended:?}"
    );
    assert_eq!(ended.deployed[0].tag, first, "{ended:?}");
    assert_eq!(ended.deployed[0].outcome, "completed", "{ended:?}");
    assert!(ended.pending.is_none(), "{ended:?}");
    let superseded: Vec<&str> = ended
        .superseded
        .iter()
        .map(|s| s.split(' ').next().unwrap())
        .collect();
    assert_eq!(superseded, ["v9.0.1", "v9.0.2", "v9.0.3", "v9.0.4"]);
    let words = shown_queue();
    assert!(
        words.contains(&format!(
            "deployed    {first} (delivery {run}-4): completed"
        )),
        "{words}"
    );
    assert!(words.contains("next        nothing pending"), "{words}");
    let pushed = status();
    assert_eq!(pushed.version, first);
    assert_eq!(pushed.phase, Phase::Completed as i32);
    assert_eq!(pushed.requested_by, format!("ci (push {run}-4)"));
    assert_eq!(served_version().await, first);
    // `watch --json` on the ended deploy: one document, its outcome's exit code.
    let watched = deployctl(&["watch", "--json"]);
    assert_eq!(watched.status.code(), Some(0), "{}", text(&watched));
    let document: serde_json::Value = serde_json::from_slice(&watched.stdout).unwrap();
    assert_eq!(document["exit_code"], 0, "{document}");
    assert_eq!(document["workflow_id"], "deploy-local", "{document}");
    assert_eq!(document["status"]["version"], first.as_str(), "{document}");

    // Each turn of both deploys reached the receiver, after a retry.
    let listed = deployctl(&["history", "--limit", "2", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let runs: Vec<String> = listed["deploys"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|deploy| deploy["run_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(runs.len(), 2, "{listed}");
    assert_eq!(
        runs[0], ended.deployed[0].run_id,
        "the newest run is the pushed deploy"
    );
    assert_eq!(held.version, second);
    delivered(
        &receiver,
        &runs[1],
        &["started", "waiting_for_approval", "completed"],
    )
    .await;
    delivered(&receiver, &runs[0], &["started", "completed"]).await;
    let notification = receiver
        .attempts()
        .into_iter()
        .map(|(_, body)| body)
        .find(|body| body["run_id"] == runs[0] && body["event"] == "completed")
        .unwrap();
    assert_eq!(notification["version"], first.as_str());
    assert_eq!(notification["from_version"], second.as_str());
    assert_eq!(notification["environment"], "local");
    assert_eq!(notification["workflow_id"], "deploy-local");
}

/// What `deployctl queue` prints.
fn shown_queue() -> String {
    let shown = deployctl(&["queue"]);
    assert!(shown.status.success(), "{}", text(&shown));
    String::from_utf8_lossy(&shown.stdout).into_owned()
}
