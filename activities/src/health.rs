//! HTTP health: one colour directly, or the whole path through HAProxy's frontend.
//!
//! The health path must answer its status (`/health`, 2xx, by default), and where the app has a
//! version endpoint it must name the version being deployed, so a colour that is up but still
//! on the old image is never taken for the new one. Each environment says which (`Environment`).

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

    /// The health path answers its status and, where there is a version endpoint, it answers
    /// `version`.
    pub async fn check(
        &self,
        base_url: &str,
        version: &str,
        endpoints: &HealthEndpoints,
    ) -> anyhow::Result<()> {
        let path = endpoints.health_path();
        let health = self
            .http
            .get(format!("{base_url}{path}"))
            .send()
            .await
            .with_context(|| format!("GET {base_url}{path}"))?;
        let healthy = match endpoints.health_status {
            0 => health.status().is_success(),
            wanted => health.status().as_u16() == wanted,
        };
        if !healthy {
            bail!("GET {base_url}{path} answered {}", health.status());
        }
        if let Some(version_path) = endpoints.version_path() {
            let served = self.version_at(base_url, version_path).await?;
            if served != version {
                bail!("{base_url} serves version {served}, not {version}");
            }
        }
        Ok(())
    }

    /// What `base_url/version` answers.
    pub async fn version(&self, base_url: &str) -> anyhow::Result<String> {
        self.version_at(base_url, "/version").await
    }

    async fn version_at(&self, base_url: &str, path: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .get(format!("{base_url}{path}"))
            .send()
            .await
            .with_context(|| format!("GET {base_url}{path}"))?;
        if !response.status().is_success() {
            bail!("GET {base_url}{path} answered {}", response.status());
        }
        Ok(response.text().await?.trim().to_string())
    }
}

/// Where an app answers for its health, and for its version if it can.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HealthEndpoints {
    /// Empty: `/health`.
    #[serde(default)]
    pub health_path: String,
    /// The status the health path answers; 0: any 2xx.
    #[serde(default)]
    pub health_status: u16,
    /// `None` (an input from before this field): `/version`. Empty: the app has none.
    #[serde(default)]
    pub version_path: Option<String>,
}

impl HealthEndpoints {
    /// The endpoints an environment declares.
    pub fn of(environment: &deployctl_proto::v1::Environment) -> Self {
        Self {
            health_path: environment.health_path.clone(),
            health_status: u16::try_from(environment.health_status).unwrap_or(0),
            version_path: Some(environment.version_path.clone()),
        }
    }

    pub fn health_path(&self) -> &str {
        if self.health_path.is_empty() {
            "/health"
        } else {
            &self.health_path
        }
    }

    pub fn version_path(&self) -> Option<&str> {
        match self.version_path.as_deref() {
            None => Some("/version"),
            Some("") => None,
            Some(path) => Some(path),
        }
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
    #[serde(default)]
    pub endpoints: HealthEndpoints,
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
            match self
                .checker
                .check(&input.base_url, &input.version, &input.endpoints)
                .await
            {
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
