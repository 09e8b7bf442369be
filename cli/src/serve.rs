//! `deployctl serve`: a push of a new image tag (from a registry or CI) starts its deploy.
//!
//! A delivery is a POST to `/push` of JSON, `{"tag": "v2.0.0"}` (or Docker Hub's
//! `{"push_data": {"tag": "v2.0.0"}}`), with three headers:
//! - `X-Deployctl-Timestamp`: when it was signed, in unix seconds;
//! - `X-Deployctl-Delivery`: an id of its own;
//! - `X-Deployctl-Signature`: `sha256=` and the hex HMAC-SHA256, under the shared secret, of
//!   `TIMESTAMP.BODY`.
//!
//! Nothing reaches Temporal until the delivery passes every check, in this order: the body is
//! within the limit (else 413), the headers are there (400), the signature matches (401,
//! compared in constant time), the timestamp is within the window (401), the id was not seen
//! within the window (409), the tag is a Docker tag (422). An accepted push is handed to the
//! environment's push queue with signal-with-start (202); latest wins there.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use deployctl_proto::v1::{Push, PushQueue};
use deployctl_workflows::{PushQueueWorkflow, push_queue::queue_id};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use temporalio_client::{Client, WorkflowStartOptions};
use temporalio_common::data_converters::{PayloadConverter, RawValue};

pub const TIMESTAMP_HEADER: &str = "x-deployctl-timestamp";
pub const DELIVERY_HEADER: &str = "x-deployctl-delivery";
pub const SIGNATURE_HEADER: &str = "x-deployctl-signature";

/// Why a delivery was refused, with the HTTP status that says so.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    MissingHeader(&'static str),
    BadSignature,
    Expired {
        age_seconds: i64,
        window_seconds: i64,
    },
    Replayed(String),
    BadBody(String),
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingHeader(_) => StatusCode::BAD_REQUEST,
            Self::BadSignature | Self::Expired { .. } => StatusCode::UNAUTHORIZED,
            Self::Replayed(_) => StatusCode::CONFLICT,
            Self::BadBody(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingHeader(name) => write!(f, "header {name} is missing or not text"),
            Self::BadSignature => f.write_str("the signature does not match"),
            Self::Expired {
                age_seconds,
                window_seconds,
            } => write!(
                f,
                "signed {age_seconds} s from now, outside the window of {window_seconds} s"
            ),
            Self::Replayed(id) => write!(f, "delivery {id} was already received"),
            Self::BadBody(why) => write!(f, "the body does not name a tag: {why}"),
        }
    }
}

/// A delivery that passed every check.
#[derive(Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub signed_at: i64,
    pub tag: String,
    pub pushed_by: String,
}

/// The signature `serve` expects: `sha256=` and the hex HMAC-SHA256 of `TIMESTAMP.BODY`.
#[cfg(test)]
fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The checks, and the deliveries seen within the window.
pub struct Verifier {
    secret: Vec<u8>,
    window_seconds: i64,
    /// Delivery id → when it was signed; forgotten once outside the window, when a replay of
    /// it is refused as expired anyway.
    seen: Mutex<HashMap<String, i64>>,
}

impl Verifier {
    pub fn new(secret: Vec<u8>, window: Duration) -> Self {
        Self {
            secret,
            window_seconds: window.as_secs() as i64,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets a delivery that could not be handed over, so that the pusher's retry of it
    /// is not refused as a replay.
    pub fn forget(&self, id: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Checks one delivery at unix time `now`.
    pub fn check(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<Delivery, Refusal> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .ok_or(Refusal::MissingHeader(name))
        };
        let timestamp = header(TIMESTAMP_HEADER)?;
        let id = header(DELIVERY_HEADER)?;
        let signature = header(SIGNATURE_HEADER)?;
        let signed_at: i64 = timestamp
            .parse()
            .map_err(|_| Refusal::MissingHeader(TIMESTAMP_HEADER))?;
        let claimed = signature
            .strip_prefix("sha256=")
            .and_then(|hex_digits| hex::decode(hex_digits).ok())
            .ok_or(Refusal::BadSignature)?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes a key of any length");
        mac.update(format!("{signed_at}.").as_bytes());
        mac.update(body);
        // Constant time: `verify_slice` compares with `subtle`.
        mac.verify_slice(&claimed)
            .map_err(|_| Refusal::BadSignature)?;
        let age_seconds = now - signed_at;
        if age_seconds.abs() > self.window_seconds {
            return Err(Refusal::Expired {
                age_seconds,
                window_seconds: self.window_seconds,
            });
        }
        if id.len() > 128 {
            return Err(Refusal::BadBody("the delivery id is over 128 bytes".into()));
        }
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.retain(|_, at| (now - *at).abs() <= self.window_seconds);
            if seen.contains_key(id) {
                return Err(Refusal::Replayed(id.to_string()));
            }
            seen.insert(id.to_string(), signed_at);
        }
        let (tag, pushed_by) = read_body(body).map_err(Refusal::BadBody)?;
        Ok(Delivery {
            id: id.to_string(),
            signed_at,
            tag,
            pushed_by,
        })
    }
}

/// The tag (and who pushed it) from our own shape or Docker Hub's.
fn read_body(body: &[u8]) -> Result<(String, String), String> {
    #[derive(serde::Deserialize)]
    struct Body {
        tag: Option<String>,
        pushed_by: Option<String>,
        push_data: Option<HubPush>,
    }
    #[derive(serde::Deserialize)]
    struct HubPush {
        tag: Option<String>,
        pusher: Option<String>,
    }
    let body: Body = serde_json::from_slice(body).map_err(|error| error.to_string())?;
    let hub = body.push_data.unwrap_or(HubPush {
        tag: None,
        pusher: None,
    });
    let tag = body.tag.or(hub.tag).ok_or("no `tag`")?;
    crate::config::check_version(&tag).map_err(|error| error.to_string())?;
    let pushed_by = body
        .pushed_by
        .or(hub.pusher)
        .unwrap_or_else(|| "push".into());
    deployctl_proto::names::container("pusher", &pushed_by).map_err(|error| error.to_string())?;
    Ok((tag, pushed_by))
}

/// What the listener needs for each accepted push.
pub struct Server {
    pub verifier: Verifier,
    pub client: Client,
    pub environment: deployctl_proto::v1::Environment,
    pub task_queue: String,
    /// Builds the deploy a tag starts, as `deployctl start` would (Compose's hashes included).
    pub request: Box<dyn Fn(String, String) -> deployctl_proto::v1::DeployRequest + Send + Sync>,
    pub web_ui: String,
    pub terminal: crate::output::Terminal,
}

/// Listens on `address` until SIGTERM or Ctrl-C.
pub async fn run(server: Server, address: SocketAddr, max_body: usize) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    let bound = listener.local_addr()?;
    let queue = queue_id(&server.environment.name);
    server.terminal.event(
        serde_json::json!({"event": "listening", "address": bound.to_string(), "queue": queue}),
        format!(
            "listening on http://{bound}/push for pushes to {} (queue {queue})",
            server.environment.name
        ),
    );
    let app = Router::new()
        .route("/push", post(push))
        .route("/health", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(Arc::new(server));
    axum::serve(listener, app)
        .with_graceful_shutdown(deployctl_worker::wait_for_termination())
        .await
        .context("serving")
}

async fn push(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<serde_json::Value>) {
    let now = chrono::Utc::now().timestamp();
    let delivery = match server.verifier.check(&headers, &body, now) {
        Ok(delivery) => delivery,
        Err(refusal) => {
            let id = headers
                .get(DELIVERY_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            server.terminal.event(
                serde_json::json!({"event": "refused", "delivery": id, "error": refusal.to_string()}),
                format!("refused delivery {id}: {refusal}"),
            );
            let answer = serde_json::json!({"accepted": false, "error": refusal.to_string()});
            return (refusal.status(), Json(answer));
        }
    };
    match hand_over(&server, &delivery).await {
        Ok(queue) => {
            server.terminal.event(
                serde_json::json!({"event": "accepted", "delivery": delivery.id, "tag": delivery.tag}),
                format!("accepted delivery {}: {} queued", delivery.id, delivery.tag),
            );
            let answer = serde_json::json!({
                "accepted": true,
                "tag": delivery.tag,
                "delivery": delivery.id,
                "queue": queue,
                "web_ui": format!("{}/{queue}", server.web_ui),
            });
            (StatusCode::ACCEPTED, Json(answer))
        }
        Err(error) => {
            server.verifier.forget(&delivery.id);
            let error = format!("{error:#}");
            server.terminal.event(
                serde_json::json!({"event": "failed", "delivery": delivery.id, "error": error}),
                format!("delivery {} not queued: {error}", delivery.id),
            );
            let answer = serde_json::json!({"accepted": false, "error": error});
            (StatusCode::SERVICE_UNAVAILABLE, Json(answer))
        }
    }
}

/// Signal-with-start: the push joins the environment's queue, which starts if it is idle.
async fn hand_over(server: &Server, delivery: &Delivery) -> anyhow::Result<String> {
    let requested_by = format!("{} (push {})", delivery.pushed_by, delivery.id);
    let build = {
        let tag = delivery.tag.clone();
        // Compose is run twice for the config hashes: not on the listener's threads.
        tokio::task::block_in_place(|| (server.request)(tag, requested_by))
    };
    let push = Push {
        tag: delivery.tag.clone(),
        delivery_id: delivery.id.clone(),
        signed_at: delivery.signed_at,
        request: Some(build),
    };
    let queue = queue_id(&server.environment.name);
    let carried = PushQueue {
        environment: server.environment.name.clone(),
        ..Default::default()
    };
    let options = WorkflowStartOptions::new(&server.task_queue, queue.clone())
        .static_summary(format!("pushes to {}", server.environment.name))
        .build();
    let body = RawValue::from_value(&push, &PayloadConverter::default());
    server
        .client
        .signal_with_start_workflow(
            PushQueueWorkflow::run,
            carried,
            PushQueueWorkflow::push,
            body,
            options,
        )
        .await
        .context("handing the push to Temporal")?;
    Ok(queue)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a-shared-secret-for-tests";

    fn headers(timestamp: i64, id: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(TIMESTAMP_HEADER, timestamp.to_string().parse().unwrap());
        headers.insert(DELIVERY_HEADER, id.parse().unwrap());
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        headers
    }

    fn verifier() -> Verifier {
        Verifier::new(SECRET.to_vec(), Duration::from_secs(300))
    }

    #[test]
    fn a_good_delivery_passes_once() {
        let verifier = verifier();
        let body = br#"{"tag": "v2.0.0", "pushed_by": "ci"}"#;
        let signed = headers(1_000, "d-1", &sign(SECRET, 1_000, body));
        let delivery = verifier.check(&signed, body, 1_010).unwrap();
        assert_eq!(delivery.tag, "v2.0.0");
        assert_eq!(delivery.pushed_by, "ci");
        assert_eq!(
            verifier.check(&signed, body, 1_020),
            Err(Refusal::Replayed("d-1".into()))
        );
    }

    #[test]
    fn a_signature_over_another_body_timestamp_or_secret_is_refused() {
        let verifier = verifier();
        let body = br#"{"tag": "v2"}"#;
        let other_body = sign(SECRET, 1_000, br#"{"tag": "v3"}"#);
        let other_time = sign(SECRET, 999, body);
        let other_secret = sign(b"another-secret", 1_000, body);
        for signature in [
            other_body,
            other_time,
            other_secret,
            "sha256=zz".into(),
            "md5=00".into(),
        ] {
            let refused = verifier.check(&headers(1_000, "d", &signature), body, 1_000);
            assert_eq!(refused, Err(Refusal::BadSignature), "{signature}");
        }
    }

    #[test]
    fn a_delivery_outside_the_window_is_refused_either_side() {
        let verifier = verifier();
        let body = br#"{"tag": "v2"}"#;
        for (signed_at, now) in [(1_000, 1_301), (1_400, 1_000)] {
            let signed = headers(signed_at, "d", &sign(SECRET, signed_at, body));
            let refused = verifier.check(&signed, body, now).unwrap_err();
            assert!(matches!(refused, Refusal::Expired { .. }), "{refused}");
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        }
    }

    #[test]
    fn a_replay_after_the_window_is_refused_as_expired() {
        let verifier = verifier();
        let body = br#"{"tag": "v2"}"#;
        let signed = headers(1_000, "d-9", &sign(SECRET, 1_000, body));
        verifier.check(&signed, body, 1_000).unwrap();
        let refused = verifier.check(&signed, body, 1_000 + 301).unwrap_err();
        assert!(matches!(refused, Refusal::Expired { .. }), "{refused}");
    }

    #[test]
    fn missing_headers_and_bad_tags_are_refused() {
        let verifier = verifier();
        let body = br#"{"tag": "v2; rm -rf /"}"#;
        let mut unsigned = headers(1_000, "d", "x");
        unsigned.remove(SIGNATURE_HEADER);
        assert_eq!(
            verifier.check(&unsigned, body, 1_000),
            Err(Refusal::MissingHeader(SIGNATURE_HEADER))
        );
        let signed = headers(1_000, "d", &sign(SECRET, 1_000, body));
        let refused = verifier.check(&signed, body, 1_000).unwrap_err();
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{refused}"
        );
    }

    #[test]
    fn docker_hub_pushes_read() {
        let body = br#"{"push_data": {"tag": "v2.1.0", "pusher": "alice"}, "repository": {}}"#;
        assert_eq!(
            read_body(body).unwrap(),
            ("v2.1.0".to_string(), "alice".to_string())
        );
    }
}
