//! How a pool member joins the environment's Worker Deployment.
//!
//! Every worker is a version of the deployment, with the image version as its Build ID. The
//! app's workflows are Pinned by default: they finish on the build they started on, which is
//! what lets the roll wait for the old version to drain. The deploy workflow is Auto-Upgrade:
//! it must follow the pool onto the new build, since the old one is about to stop.

use std::time::Duration;

use deployctl_activities::temporal::{VersionRef, adopt_if_no_current};
use temporalio_client::Client;
use temporalio_common::worker::{
    VersioningBehavior, WorkerDeploymentOptions, WorkerDeploymentVersion,
};

/// How the app's own workflows follow a new version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AppBehavior {
    /// Finish on the build they started on (the old version drains before it stops).
    Pinned,
    /// Move to the Current version at their next task (their code must replay old histories).
    AutoUpgrade,
}

#[derive(Clone, Debug, clap::Args)]
pub struct VersioningArgs {
    /// The environment's Worker Deployment. Unset: the worker is not versioned.
    #[arg(long, env = "TEMPORAL_DEPLOYMENT_NAME")]
    pub deployment_name: Option<String>,
    /// This worker's Build ID; by default the image version (`APP_VERSION`).
    #[arg(long, env = "TEMPORAL_BUILD_ID")]
    pub build_id: Option<String>,
    /// How the app's workflows follow a new version.
    #[arg(long, env = "APP_VERSIONING_BEHAVIOR", value_enum, default_value_t = AppBehavior::Pinned)]
    pub app_behavior: AppBehavior,
}

impl VersioningArgs {
    pub fn build_id(&self) -> String {
        self.build_id
            .clone()
            .or_else(|| std::env::var("APP_VERSION").ok())
            .filter(|build_id| !build_id.is_empty())
            .unwrap_or_else(|| temporalio_common::worker::build_id_from_current_exe().to_string())
    }

    /// This worker's version, when it is versioned.
    pub fn version(&self) -> Option<VersionRef> {
        self.deployment_name
            .clone()
            .filter(|name| !name.is_empty())
            .map(|deployment_name| VersionRef {
                deployment_name,
                build_id: self.build_id(),
            })
    }

    fn options(&self, behavior: VersioningBehavior) -> WorkerDeploymentOptions {
        match self.version() {
            Some(version) => WorkerDeploymentOptions::new(
                WorkerDeploymentVersion::builder()
                    .deployment_name(version.deployment_name)
                    .build_id(version.build_id)
                    .build(),
            )
            .use_worker_versioning(true)
            .default_versioning_behavior(behavior)
            .build(),
            None => WorkerDeploymentOptions::from_build_id(self.build_id()),
        }
    }

    /// For the app's task queue.
    pub fn app_options(&self) -> WorkerDeploymentOptions {
        self.options(match self.app_behavior {
            AppBehavior::Pinned => VersioningBehavior::Pinned,
            AppBehavior::AutoUpgrade => VersioningBehavior::AutoUpgrade,
        })
    }

    /// For the deploy's task queue.
    pub fn deploy_options(&self) -> WorkerDeploymentOptions {
        self.options(VersioningBehavior::AutoUpgrade)
    }
}

/// On a fresh environment, makes this worker's version Current once its pollers are known to
/// the server. Retries for a minute, quietly: the pool works without it once a deploy (or
/// another member) has set a Current version.
pub async fn adopt_when_registered(client: Client, version: VersionRef) {
    for _ in 0..60 {
        match adopt_if_no_current(&client, &version).await {
            Ok(true) => {
                tracing::info!(%version, "no Current version yet: made this one Current");
                return;
            }
            Ok(false) => return,
            Err(error) => tracing::debug!("{error:#}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tracing::warn!(%version, "could not check the deployment's Current version");
}
