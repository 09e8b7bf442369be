//! Benchmark: the worker pool's footprint and app-task throughput around its own roll.
//!
//! `cargo bench -p deployctl --bench pool` on a running compose stack. Prints figures, asserts
//! nothing about speed (these machines are noisy): each worker's RSS idle and under a steady
//! stream of `ProcessOrder` workflows, and completed orders per second before, during and
//! after the deploy's worker roll, with during/before as a ratio measured in the same run.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use deployctl_proto::v1::Phase;
use support::*;

/// Offered load: one `ProcessOrder` start every this often.
const PACE: Duration = Duration::from_millis(50);
/// Stream this long before the deploy starts, and after it ends.
const SETTLE: Duration = Duration::from_secs(20);

fn print_rss(label: &str, rss: &[(String, f64)]) {
    let figures: Vec<String> = rss
        .iter()
        .map(|(name, mib)| format!("{name} {mib:.1} MiB"))
        .collect();
    println!("RSS {label}: {}", figures.join(", "));
}

fn unix(timestamp: &str) -> f64 {
    chrono::DateTime::parse_from_rfc3339(timestamp)
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
        .unwrap_or_default()
}

#[tokio::main]
async fn main() {
    settled_stack().await;
    let client = temporal().await;
    print_rss("idle", &worker_rss());

    let prefix = format!("bench-{}", chrono::Utc::now().format("%Y%m%d%H%M%S"));
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let stream = {
        let client = client.clone();
        let prefix = prefix.clone();
        tokio::spawn(async move {
            let mut pace = tokio::time::interval(PACE);
            let mut index = 0;
            while !*stopped.borrow_and_update() {
                pace.tick().await;
                let id = format!("{prefix}-order-{index}");
                let _ =
                    start_app_workflow(&client, "ProcessOrder", &id, serde_json::json!(id)).await;
                index += 1;
            }
            index
        })
    };
    tokio::time::sleep(SETTLE).await;
    print_rss("under the stream", &worker_rss());
    let target = other_version().await;
    let output = deploy(target).await;
    assert!(output.status.success(), "{}", text(&output));
    let done = status();
    assert_eq!(done.phase, Phase::Completed as i32);
    tokio::time::sleep(SETTLE).await;
    stop.send(true).unwrap();
    let started = stream.await.unwrap();
    print_rss("after the roll, idle", &worker_rss());

    let roll = step(&done, deployctl_workflows::plan::ROLL_WORKERS);
    let (roll_start, roll_end) = (unix(&roll.started_at), unix(&roll.finished_at));
    let pool = database().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let completed: Vec<(f64,)> = loop {
        let rows: Vec<(f64,)> = sqlx::query_as(
            "SELECT extract(epoch FROM created_at)::float8 FROM orders WHERE customer LIKE $1 || '-order-%'",
        )
        .bind(&prefix)
        .fetch_all(&pool)
        .await
        .unwrap();
        if rows.len() >= started || std::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let first = completed.iter().map(|r| r.0).fold(f64::MAX, f64::min);
    let last = completed.iter().map(|r| r.0).fold(0.0, f64::max);
    let rate = |from: f64, to: f64| {
        let count = completed.iter().filter(|r| r.0 >= from && r.0 < to).count();
        (count, count as f64 / (to - from).max(0.001))
    };
    let before = rate(first, roll_start);
    let during = rate(roll_start, roll_end);
    let after = rate(roll_end, last + 0.001);
    println!(
        "app stream: {started} ProcessOrder started, {} completed (offered {:.0}/s)",
        completed.len(),
        1.0 / PACE.as_secs_f64()
    );
    println!(
        "orders/s before the roll {:.1} ({} in {:.1} s), during it {:.1} ({} in {:.1} s), after it {:.1} ({} in {:.1} s)",
        before.1,
        before.0,
        roll_start - first,
        during.1,
        during.0,
        roll_end - roll_start,
        after.1,
        after.0,
        last - roll_end
    );
    println!(
        "during/before ratio {:.2}, after/before ratio {:.2}",
        during.1 / before.1,
        after.1 / before.1
    );
}
