//! The Docker activities: thin adapters over `client` and `recreate`. Anything that can wait
//! (a graceful stop, a container coming up) heartbeats while it waits, so a killed worker's
//! activity is retried elsewhere within seconds, not after its whole timeout.

use futures::{StreamExt, TryStreamExt};
use std::{sync::Arc, time::Duration};

use bollard::Docker;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use super::*;
use crate::{beating, failure, poll_until};

/// The Docker activities. One engine connection, shared.
pub struct DockerActivities {
    pub docker: Docker,
}

impl DockerActivities {
    /// Polls (heartbeating) until Docker reports `name` healthy; returns it as it is then.
    async fn healthy(
        &self,
        ctx: &ActivityContext,
        name: &str,
        timeout: Duration,
    ) -> Result<ContainerInfo, ActivityError> {
        let what = format!("{name} healthy");
        poll_until(ctx, &what, timeout, || async {
            if healthy_yet(&self.docker, name).await? {
                return container(&self.docker, name).await;
            }
            Ok(None)
        })
        .await
    }
}

#[temporalio_macros::activities]
impl DockerActivities {
    /// Resolves an app image and reads how many migrations it carries.
    #[activity]
    pub async fn inspect_image(
        self: Arc<Self>,
        _ctx: ActivityContext,
        image: String,
    ) -> Result<ImageInfo, ActivityError> {
        image_info(&self.docker, &image).await.map_err(failure)
    }

    /// The migrations a container's image carries, by folder name.
    #[activity]
    pub async fn list_migrations(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: ListMigrations,
    ) -> Result<Vec<String>, ActivityError> {
        migrations_in(&self.docker, &input.container, &input.path)
            .await
            .map_err(failure)
    }

    /// Reads one container; `None` when it does not exist.
    #[activity]
    pub async fn inspect_container(
        self: Arc<Self>,
        _ctx: ActivityContext,
        name: String,
    ) -> Result<Option<ContainerInfo>, ActivityError> {
        container(&self.docker, &name).await.map_err(failure)
    }

    /// Recreates a container on a new image (create before remove), and with
    /// `await_healthy_seconds` waits until it is healthy.
    #[activity]
    pub async fn replace_container(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ReplaceContainer,
    ) -> Result<(), ActivityError> {
        let what = format!("{} onto {}", input.container, input.image);
        beating(&ctx, &what, async {
            replace_container(
                &self.docker,
                &input.container,
                &input.image,
                Duration::from_secs(input.stop_timeout_seconds),
                &input.config_hashes,
            )
            .await
        })
        .await?;
        if input.await_healthy_seconds > 0 {
            let timeout = Duration::from_secs(input.await_healthy_seconds);
            self.healthy(&ctx, &input.container, timeout).await?;
        }
        Ok(())
    }

    /// Waits until Docker reports the container healthy.
    #[activity]
    pub async fn await_healthy(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AwaitHealthy,
    ) -> Result<ContainerInfo, ActivityError> {
        let timeout = Duration::from_secs(input.timeout_seconds);
        self.healthy(&ctx, &input.container, timeout).await
    }

    /// Stops a container gracefully, without removing it. Absent or stopped is fine.
    #[activity]
    pub async fn stop_container(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ReplaceContainer,
    ) -> Result<(), ActivityError> {
        let what = format!("stopping {}", input.container);
        beating(&ctx, &what, async {
            stop(
                &self.docker,
                &input.container,
                Duration::from_secs(input.stop_timeout_seconds),
            )
            .await
            .map(drop)
        })
        .await
    }

    /// Lists the containers of a Compose service.
    #[activity]
    pub async fn list_service(
        self: Arc<Self>,
        _ctx: ActivityContext,
        service: ServiceRef,
    ) -> Result<Vec<ContainerInfo>, ActivityError> {
        service_containers(&self.docker, &service.project, &service.service)
            .await
            .map_err(failure)
    }

    /// Starts workers on the new image until `count` run it, and waits until they are healthy.
    #[activity]
    pub async fn start_workers(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: StartWorkers,
    ) -> Result<Vec<String>, ActivityError> {
        let what = format!("starting {} workers on {}", input.count, input.image);
        let started = beating(&ctx, &what, async {
            start_service_containers(
                &self.docker,
                &input.service.project,
                &input.service.service,
                &input.image,
                input.count as usize,
                &input.config_hashes,
            )
            .await
        })
        .await?;
        let wanted = image_info(&self.docker, &input.image)
            .await
            .map_err(failure)?;
        let timeout = Duration::from_secs(input.timeout_seconds);
        let what = format!("{} workers on {} healthy", input.count, input.image);
        poll_until(&ctx, &what, timeout, || async {
            let containers =
                service_containers(&self.docker, &input.service.project, &input.service.service)
                    .await?;
            let mut healthy = 0;
            for worker in containers.iter().filter(|c| c.image_id == wanted.id) {
                if !healthy_yet(&self.docker, &worker.name).await? {
                    return Ok(None);
                }
                healthy += 1;
            }
            Ok((healthy >= input.count as usize).then_some(()))
        })
        .await?;
        Ok(started)
    }

    /// Stops (SIGTERM, so in-flight tasks finish) and removes workers not on `keep_image`.
    #[activity]
    pub async fn drain_workers(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DrainWorkers,
    ) -> Result<Vec<String>, ActivityError> {
        let keep = image_info(&self.docker, &input.keep_image)
            .await
            .map_err(failure)?;
        let containers =
            service_containers(&self.docker, &input.service.project, &input.service.service)
                .await
                .map_err(failure)?;
        let old: Vec<String> = containers
            .into_iter()
            .filter(|c| c.image_id != keep.id)
            .map(|c| c.name)
            .collect();
        // A few at a time (as they start): each gets its own grace period.
        let grace = Duration::from_secs(input.stop_timeout_seconds);
        let stops = old.clone().into_iter().map(|name| {
            let docker = self.docker.clone();
            async move {
                stop_and_remove(&docker, &name, grace).await?;
                crate::crash_point("drain-workers-after-one");
                anyhow::Ok(())
            }
        });
        let what = format!("draining {}", old.join(", "));
        let all = futures::stream::iter(stops)
            .buffer_unordered(AT_ONCE)
            .try_collect::<Vec<()>>();
        beating(&ctx, &what, all).await?;
        Ok(old)
    }
}
