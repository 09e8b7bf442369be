//! Activity options: each kind of activity gets timeouts sized to its own wait, so a worker
//! killed mid-activity is noticed within seconds (the heartbeat timeout), not after minutes.
//!
//! Effects wait for their activity to acknowledge a cancel (`WaitCancellationCompleted`): an
//! abort must never race a switch that is still making a colour live. Compensation runs in its
//! own cancellation scope, so an abort cannot cancel the moves that undo the deploy.

use std::time::Duration;

use temporalio_common::RetryPolicy;
use temporalio_sdk::{ActivityCancellationType, ActivityOptions, WorkflowCancellationToken};

/// How long the slow parts of the stack get before a step gives up.
pub const CONTAINER_HEALTH_TIMEOUT: Duration = Duration::from_secs(180);
pub const MIGRATIONS_TIMEOUT: Duration = Duration::from_secs(300);
pub const SWITCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Graceful stop: SIGTERM, then SIGKILL after this. Cron finishes its job, workers drain.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Every long activity heartbeats at least every second; three missed beats and it is retried.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(4);

fn retries(maximum_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(500))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(10))
        .maximum_attempts(maximum_attempts)
        .build()
}

/// A read: quick, retried a few times. A read on a killed worker times out in 10 s.
pub fn quick(summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(retries(6))
        .summary(summary)
        .build()
}

/// A wait that polls and heartbeats.
pub fn waiting(timeout: Duration, summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(timeout + Duration::from_secs(60))
        .heartbeat_timeout(HEARTBEAT_TIMEOUT)
        .cancellation_type(ActivityCancellationType::WaitCancellationCompleted)
        .retry_policy(retries(4))
        .summary(summary)
        .build()
}

/// A change, which may wait for a graceful stop; heartbeats while it waits.
pub fn changing(summary: String) -> ActivityOptions {
    changing_then_waiting(Duration::ZERO, summary)
}

/// A change, then a wait of at most `wait` for its result (a container healthy).
pub fn changing_then_waiting(wait: Duration, summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(STOP_TIMEOUT * 4 + wait + Duration::from_secs(60))
        .heartbeat_timeout(HEARTBEAT_TIMEOUT)
        .cancellation_type(ActivityCancellationType::WaitCancellationCompleted)
        .retry_policy(retries(6))
        .summary(summary)
        .build()
}

/// The same options, in a scope no workflow cancel reaches: for compensation.
pub fn uncancellable(mut options: ActivityOptions) -> ActivityOptions {
    options.cancellation_token = Some(WorkflowCancellationToken::new());
    options
}
