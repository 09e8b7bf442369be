//! The deploy's effects: thin, idempotent Temporal activities, one module per real part.
//!
//! Each module holds a small client for its part and, at its foot, the `#[activities]` that the
//! workflow calls. Activities can be retried at any point: each first looks at the part and does
//! only what is still missing. Long waits poll, and heartbeat what they saw, so the Web UI shows
//! why a step is still running.

pub mod compose;
pub mod database;
pub mod docker;
pub mod environments;
pub mod haproxy;
pub mod health;
pub mod notify;
pub mod redis;
pub mod secrets;
pub mod temporal;

use std::{future::Future, time::Duration};

use temporalio_sdk::{
    ApplicationFailure,
    activities::{ActivityContext, ActivityError},
};

/// `pid@hostname`: in a container the hostname is the container id, so the Web UI's worker
/// identity, and Temporal's record of who changed a deployment, name the container.
pub fn identity() -> String {
    let hostname = std::fs::read_to_string("/etc/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "worker".into());
    format!("{}@{hostname}", std::process::id())
}

/// Errors that no retry can mend: the activity fails for good, and the workflow decides.
#[derive(Debug, thiserror::Error)]
pub enum Permanent {
    #[error(
        "no image {0} on this Docker host: build or load it first (there is no registry to pull from)"
    )]
    NoSuchImage(String),
    #[error("container {0} does not exist: bring the stack up first (docker-compose up -d)")]
    NoSuchContainer(String),
    #[error(
        "container {name} exited with code {code} before it was healthy; last log lines:\n{logs}"
    )]
    Exited {
        name: String,
        code: i64,
        logs: String,
    },
    #[error("container {name} is unhealthy; last log lines:\n{logs}")]
    Unhealthy { name: String, logs: String },
    #[error("migration {name} failed: {logs}")]
    MigrationFailed { name: String, logs: String },
    #[error("{0}")]
    Refused(String),
}

impl Permanent {
    fn type_name(&self) -> &'static str {
        match self {
            Self::NoSuchImage(_) => "NoSuchImage",
            Self::NoSuchContainer(_) => "NoSuchContainer",
            Self::Exited { .. } => "ContainerExited",
            Self::Unhealthy { .. } => "ContainerUnhealthy",
            Self::MigrationFailed { .. } => "MigrationFailed",
            Self::Refused(_) => "Refused",
        }
    }
}

/// Turns an error into an activity failure: final for `Permanent`, retryable otherwise.
pub fn failure(error: anyhow::Error) -> ActivityError {
    match error.downcast::<Permanent>() {
        Ok(permanent) => {
            let type_name = permanent.type_name();
            ActivityError::application(
                ApplicationFailure::builder(permanent)
                    .type_name(type_name.to_string())
                    .non_retryable(true)
                    .build(),
            )
        }
        Err(error) => ActivityError::application(ApplicationFailure::new(format!("{error:#}"))),
    }
}

/// What a long wait reports to: the activity's heartbeat, or nothing outside an activity.
pub trait Heartbeat {
    fn beat(&self, detail: String) -> impl Future<Output = ()>;
    fn cancelled(&self) -> bool;
}

impl Heartbeat for ActivityContext {
    /// Heartbeat details are kept in history (a timed-out activity's last beat), so they are
    /// scrubbed like failures.
    async fn beat(&self, detail: String) {
        let _ = self.record_heartbeat(secrets::scrub(&detail)).await;
    }

    fn cancelled(&self) -> bool {
        self.is_cancelled()
    }
}

/// For calls made outside an activity: tests and tools.
pub struct NoHeartbeat;

impl Heartbeat for NoHeartbeat {
    async fn beat(&self, _detail: String) {}

    fn cancelled(&self) -> bool {
        false
    }
}

/// Polls `probe` until it yields a value, heartbeating what it last saw: every 100 ms for
/// the first seconds, when the answer is most likely near, then every half second for the
/// long waits (a drain can take minutes). A `Permanent` error ends the wait at once; others are
/// read as "not yet".
pub async fn poll_until<T, F, Fut>(
    ctx: &impl Heartbeat,
    what: &str,
    timeout: Duration,
    mut probe: F,
) -> Result<T, ActivityError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    loop {
        if ctx.cancelled() {
            return Err(ActivityError::cancelled());
        }
        let last_seen = match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => "not yet".to_string(),
            Err(error) if error.is::<Permanent>() => return Err(failure(error)),
            Err(error) => format!("{error:#}"),
        };
        ctx.beat(format!("{what}: {last_seen}")).await;
        if tokio::time::Instant::now() >= deadline {
            return Err(failure(anyhow::anyhow!(
                "timed out after {}s waiting for {what}; last seen: {last_seen}",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(poll_interval(started.elapsed())).await;
    }
}

/// How long a wait that has lasted `waited` sleeps before it looks again.
pub fn poll_interval(waited: Duration) -> Duration {
    if waited < Duration::from_secs(10) {
        Duration::from_millis(100)
    } else {
        Duration::from_millis(500)
    }
}

/// Runs one effect to its end, heartbeating every second meanwhile, so a worker killed in the
/// middle is noticed within the heartbeat timeout. The effect is not cut short on cancel: a
/// half-made Docker call helps nobody, and every effect here is short and idempotent.
pub async fn beating<T>(
    ctx: &impl Heartbeat,
    what: &str,
    effect: impl Future<Output = anyhow::Result<T>>,
) -> Result<T, ActivityError> {
    let mut effect = std::pin::pin!(effect);
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            outcome = &mut effect => return outcome.map_err(failure),
            _ = ticks.tick() => ctx.beat(what.to_string()).await,
        }
    }
}

/// A failpoint between two effects: with the `failpoints` feature, and `FAILPOINTS` naming
/// it (`replace-after-rename=return`), the worker process dies right here, as a `kill -9`
/// would kill it. It fires once per container: a marker in `/tmp` survives the restart, so
/// the restarted worker goes on and the test sees the retry. Without the feature it is nothing.
pub fn crash_point(name: &str) {
    #[cfg(feature = "failpoints")]
    if fail::eval(name, |_| ()).is_some() {
        let marker = std::path::Path::new("/tmp").join(format!("crashed-at-{name}"));
        if !marker.exists() {
            let _ = std::fs::write(&marker, name);
            eprintln!("failpoint {name}: the worker dies here");
            std::process::abort();
        }
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// Reads `FAILPOINTS` once at worker start (with the `failpoints` feature only).
pub fn setup_failpoints() {
    #[cfg(feature = "failpoints")]
    std::mem::forget(fail::FailScenario::setup());
}
