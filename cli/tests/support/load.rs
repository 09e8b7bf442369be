//! A bounded HTTP load through HAProxy's published frontend (127.0.0.1 only).
//!
//! Each connection is a closed loop: one request at a time, a short pause, the next. Every
//! request's start, latency and outcome is kept, so the switch window can be cut out of the
//! run and compared with steady state. The load stops when asked or at its time limit.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;

#[derive(Clone, Debug)]
pub struct Sample {
    /// Since the load started.
    pub at: Duration,
    pub latency: Duration,
    /// HTTP status, or 0 for a socket error.
    pub status: u16,
    /// A short body (such as `/version`'s), kept so that a run can tell which release answered.
    pub body: Option<Box<str>>,
}

pub struct Load {
    started: Instant,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Sample>>>,
}

#[derive(Debug)]
pub struct Report {
    pub samples: Vec<Sample>,
    pub started: Instant,
}

impl Load {
    /// `connections` loops against `url`; `keep_alive` false sends `Connection: close`.
    /// Stops by itself after `limit`.
    pub fn start(url: &str, connections: usize, keep_alive: bool, limit: Duration) -> Self {
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..connections)
            .map(|_| {
                let url = url.to_string();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let client = reqwest::Client::builder()
                        .pool_max_idle_per_host(if keep_alive { 1 } else { 0 })
                        .timeout(Duration::from_secs(10))
                        .build()
                        .unwrap();
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
                        let sent = Instant::now();
                        let mut request = client.get(&url);
                        if !keep_alive {
                            request = request.header("Connection", "close");
                        }
                        let (status, body) = match request.send().await {
                            Ok(response) => {
                                let status = response.status().as_u16();
                                match response.bytes().await {
                                    Ok(bytes) => (status, short_text(&bytes)),
                                    Err(_) => (0, None),
                                }
                            }
                            Err(_) => (0, None),
                        };
                        samples.push(Sample {
                            at: sent - started,
                            latency: sent.elapsed(),
                            status,
                            body,
                        });
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    samples
                })
            })
            .collect();
        Self {
            started,
            stop,
            tasks,
        }
    }

    pub async fn finish(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let mut samples = Vec::new();
        for task in self.tasks {
            samples.extend(task.await.unwrap());
        }
        samples.sort_by_key(|s| s.at);
        Report {
            samples,
            started: self.started,
        }
    }
}

fn short_text(bytes: &[u8]) -> Option<Box<str>> {
    (bytes.len() <= 32)
        .then(|| std::str::from_utf8(bytes).ok())
        .flatten()
        .map(|text| text.trim().into())
}

/// Latency figures over a set of samples, in milliseconds.
#[derive(Debug, serde::Serialize)]
pub struct Figures {
    pub requests: usize,
    pub non_2xx: usize,
    pub socket_errors: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests, {} non-2xx, {} socket errors, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.requests, self.non_2xx, self.socket_errors, self.p50_ms, self.p99_ms, self.max_ms
        )
    }
}

impl Report {
    pub fn figures(&self) -> Figures {
        figures(self.samples.iter())
    }

    /// Figures for requests sent between two instants.
    pub fn window(&self, from: Instant, to: Instant) -> Figures {
        let from = from.saturating_duration_since(self.started);
        let to = to.saturating_duration_since(self.started);
        figures(self.samples.iter().filter(|s| s.at >= from && s.at <= to))
    }

    /// Figures for requests sent outside a window.
    pub fn outside(&self, from: Instant, to: Instant) -> Figures {
        let from = from.saturating_duration_since(self.started);
        let to = to.saturating_duration_since(self.started);
        figures(self.samples.iter().filter(|s| s.at < from || s.at > to))
    }
}

fn figures<'a>(samples: impl Iterator<Item = &'a Sample>) -> Figures {
    // Microseconds, up to a minute: anything slower than the request timeout is already an error.
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let (mut requests, mut non_2xx, mut socket_errors) = (0, 0, 0);
    for sample in samples {
        requests += 1;
        match sample.status {
            0 => socket_errors += 1,
            200..=299 => {}
            _ => non_2xx += 1,
        }
        histogram.saturating_record(sample.latency.as_micros() as u64);
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    Figures {
        requests,
        non_2xx,
        socket_errors,
        p50_ms: ms(histogram.value_at_quantile(0.50)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        max_ms: ms(histogram.max()),
    }
}
