//! HTTP health: one colour directly, or the whole path through HAProxy's frontend.
//!
//! `/health` must answer 200 and `/version` must name the version being deployed, so a colour
//! that is up but still on the old image is never taken for the new one.

use std::{sync::atomic::Ordering, time::Duration};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use temporalio_sdk::activities::{ActivityContext, ActivityError};

#[derive(Clone, Debug)]
pub struct HealthChecker {
    http: reqwest::Client,
}

impl Default for HealthChecker {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthChecker {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()
            .expect("an HTTP client with a timeout always builds");
        Self { http }
    }

    /// `base_url/health` answers 200 and `base_url/version` answers `version`.
    pub async fn check(&self, base_url: &str, version: &str) -> anyhow::Result<()> {
        let health = self
            .http
            .get(format!("{base_url}/health"))
            .send()
            .await
            .with_context(|| format!("GET {base_url}/health"))?;
        if !health.status().is_success() {
            bail!("GET {base_url}/health answered {}", health.status());
        }
        let served = self.version(base_url).await?;
        if served != version {
            bail!("{base_url} serves version {served}, not {version}");
        }
        Ok(())
    }

    pub async fn version(&self, base_url: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .get(format!("{base_url}/version"))
            .send()
            .await
            .with_context(|| format!("GET {base_url}/version"))?;
        if !response.status().is_success() {
            bail!("GET {base_url}/version answered {}", response.status());
        }
        Ok(response.text().await?.trim().to_string())
    }
}

/// Input of the health activities.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckHealth {
    pub base_url: String,
    pub version: String,
    /// Consecutive good answers needed.
    pub answers: u32,
    pub timeout_seconds: u64,
}

/// The HTTP health activities.
pub struct HealthActivities {
    pub checker: HealthChecker,
}

#[temporalio_macros::activities]
impl HealthActivities {
    /// Waits until `base_url` is healthy and serves `version`, `answers` times in a row.
    #[activity]
    pub async fn await_http_health(
        self: std::sync::Arc<Self>,
        ctx: ActivityContext,
        input: CheckHealth,
    ) -> Result<(), ActivityError> {
        let what = format!("{} healthy on {}", input.base_url, input.version);
        let timeout = Duration::from_secs(input.timeout_seconds);
        let good = std::sync::atomic::AtomicU32::new(0);
        crate::poll_until(&ctx, &what, timeout, || async {
            match self.checker.check(&input.base_url, &input.version).await {
                Ok(()) => {
                    good.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    good.store(0, Ordering::Relaxed);
                    return Err(error);
                }
            }
            Ok((good.load(Ordering::Relaxed) >= input.answers.max(1)).then_some(()))
        })
        .await
    }
}
