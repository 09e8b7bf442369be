//! Docker, through bollard: the containers of the seed's stack.
//!
//! `client` reads, stops and removes; `recreate` swaps a container's image the crash-safe way
//! (create before remove); `activities` are the thin Temporal adapters over both. Every call
//! is idempotent: a container already on the wanted image is left alone.

mod activities;
mod client;
mod recreate;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use activities::*;
pub use client::*;
pub use recreate::*;

/// What the deploy needs to know of an app image before it changes anything.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageInfo {
    pub image: String,
    pub id: String,
    pub migrations: u32,
}

/// One container of the stack, as `docker ps` would list it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerInfo {
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub running: bool,
    pub health: String,
    pub address: String,
    pub number: u32,
    /// What the container calls itself (its short id, unless set): a worker's Temporal
    /// identity is `pid@hostname`.
    #[serde(default)]
    pub hostname: String,
    /// Its Compose service, where Compose (or a deploy) labelled it.
    #[serde(default)]
    pub service: String,
}

/// Input of `replace_container` and `stop_container`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplaceContainer {
    pub container: String,
    pub image: String,
    pub stop_timeout_seconds: u64,
    /// Compose config hash by service, for the new containers' labels.
    #[serde(default)]
    pub config_hashes: HashMap<String, String>,
    /// Nonzero: `replace_container` returns only once the new container is healthy, within
    /// this many seconds (one activity, so a step may run beside another without its own
    /// follow-up commands).
    #[serde(default)]
    pub await_healthy_seconds: u64,
}

/// Input of `list_migrations`: a container of the new image, and where its image keeps the
/// migrations.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListMigrations {
    pub container: String,
    pub path: String,
}

/// Input of `await_healthy`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AwaitHealthy {
    pub container: String,
    pub timeout_seconds: u64,
}

/// A Compose service of the stack.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceRef {
    pub project: String,
    pub service: String,
}

impl ServiceRef {
    /// The environment's worker pool.
    pub fn workers_of(environment: &deployctl_proto::v1::Environment) -> Self {
        Self {
            project: environment.compose_project.clone(),
            service: environment.worker_service.clone(),
        }
    }
}

/// Input of `start_workers`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StartWorkers {
    pub service: ServiceRef,
    pub image: String,
    pub count: u32,
    pub timeout_seconds: u64,
    #[serde(default)]
    pub config_hashes: HashMap<String, String>,
}

/// Input of `drain_workers`: every container of the service not on `keep_image` goes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DrainWorkers {
    pub service: ServiceRef,
    pub keep_image: String,
    pub stop_timeout_seconds: u64,
}
