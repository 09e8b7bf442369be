//! The Docker engine, through bollard: reading, stopping and removing the stack's containers.

use std::{collections::HashMap, time::Duration};

use anyhow::Context;
use bollard::{
    Docker,
    errors::Error as DockerError,
    models::{ContainerInspectResponse, HealthStatusEnum},
    query_parameters::{
        DownloadFromContainerOptionsBuilder, InspectContainerOptions, ListContainersOptions,
        LogsOptionsBuilder, RemoveContainerOptions, StopContainerOptions,
    },
};
use futures::StreamExt;

use super::{ContainerInfo, ImageInfo};
use crate::Permanent;

pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
pub const COMPOSE_SERVICE_LABEL: &str = "com.docker.compose.service";
pub const COMPOSE_NUMBER_LABEL: &str = "com.docker.compose.container-number";
/// The image declares how many migrations it carries, so the deploy knows what to await.
pub const MIGRATIONS_LABEL: &str = "deployctl.migrations";

fn not_found(error: &DockerError) -> bool {
    matches!(
        error,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Connects as the Docker CLI would (DOCKER_HOST, else the local socket) and agrees on an API
/// version the engine speaks.
pub async fn connect() -> anyhow::Result<Docker> {
    let docker = Docker::connect_with_defaults().context("connecting to Docker")?;
    // A worker just started on a second network may not resolve docker_proxy at once (seen
    // once in the fault matrix: the new worker died, and the deploy with it): a while of
    // patience, as with Temporal.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match docker.clone().negotiate_version().await {
            Ok(docker) => return Ok(docker),
            Err(error) if tokio::time::Instant::now() < deadline => {
                tracing::info!(%error, "Docker not reachable yet; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error).context("negotiating the Docker API version"),
        }
    }
}

pub async fn image_info(docker: &Docker, image: &str) -> anyhow::Result<ImageInfo> {
    let inspect = match docker.inspect_image(image).await {
        Ok(inspect) => inspect,
        Err(error) if not_found(&error) => return Err(Permanent::NoSuchImage(image.into()).into()),
        Err(error) => return Err(error).context(format!("inspecting image {image}")),
    };
    let labels = inspect
        .config
        .as_ref()
        .and_then(|config| config.labels.clone())
        .unwrap_or_default();
    let migrations = match labels.get(MIGRATIONS_LABEL) {
        Some(count) => count
            .parse()
            .with_context(|| format!("image {image}: label {MIGRATIONS_LABEL}={count:?}"))?,
        None => 0,
    };
    Ok(ImageInfo {
        image: image.to_string(),
        id: inspect.id.unwrap_or_default(),
        migrations,
    })
}

pub async fn inspect(
    docker: &Docker,
    name: &str,
) -> anyhow::Result<Option<ContainerInspectResponse>> {
    match docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
    {
        Ok(inspect) => Ok(Some(inspect)),
        Err(error) if not_found(&error) => Ok(None),
        Err(error) => Err(error).context(format!("inspecting container {name}")),
    }
}

pub(super) fn container_info(inspect: &ContainerInspectResponse) -> ContainerInfo {
    let state = inspect.state.clone().unwrap_or_default();
    let config = inspect.config.clone().unwrap_or_default();
    let labels = config.labels.clone().unwrap_or_default();
    let address = inspect
        .network_settings
        .as_ref()
        .and_then(|settings| settings.networks.as_ref())
        .and_then(|networks| {
            networks
                .values()
                .find_map(|endpoint| endpoint.ip_address.clone())
        })
        .unwrap_or_default();
    ContainerInfo {
        name: inspect
            .name
            .clone()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: config.image.clone().unwrap_or_default(),
        hostname: config.hostname.clone().unwrap_or_default(),
        image_id: inspect.image.clone().unwrap_or_default(),
        running: state.running.unwrap_or(false),
        health: state
            .health
            .and_then(|health| health.status)
            .map(|status| status.to_string())
            .unwrap_or_default(),
        address,
        number: labels
            .get(COMPOSE_NUMBER_LABEL)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
        service: labels
            .get(COMPOSE_SERVICE_LABEL)
            .cloned()
            .unwrap_or_default(),
    }
}

pub async fn container(docker: &Docker, name: &str) -> anyhow::Result<Option<ContainerInfo>> {
    Ok(inspect(docker, name).await?.as_ref().map(container_info))
}

/// Containers of one Compose service, running or not, ordered by container number.
pub async fn service_containers(
    docker: &Docker,
    project: &str,
    service: &str,
) -> anyhow::Result<Vec<ContainerInfo>> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![
            format!("{COMPOSE_PROJECT_LABEL}={project}"),
            format!("{COMPOSE_SERVICE_LABEL}={service}"),
        ],
    )]);
    let summaries = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .context("listing containers")?;
    let mut containers = Vec::new();
    for summary in summaries {
        let Some(id) = summary.id else { continue };
        let names = summary.names.unwrap_or_default();
        if names.iter().any(|n| n.ends_with(&super::aside_name(""))) {
            continue;
        }
        if let Some(inspect) = inspect(docker, &id).await? {
            containers.push(container_info(&inspect));
        }
    }
    containers.sort_by_key(|c| (c.number, c.name.clone()));
    Ok(containers)
}

/// Stops gracefully (SIGTERM, then SIGKILL after `timeout`) and removes. Absent is fine.
pub async fn stop_and_remove(
    docker: &Docker,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<bool> {
    if !stop(docker, name, timeout).await? {
        return Ok(false);
    }
    remove(docker, name).await?;
    Ok(true)
}

/// Removes a container, running or not. Absent is fine.
pub async fn remove(docker: &Docker, name: &str) -> anyhow::Result<()> {
    match docker
        .remove_container(
            name,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(error) if not_found(&error) => Ok(()),
        Err(error) => Err(error).context(format!("removing container {name}")),
    }
}

/// Stops gracefully; returns whether the container exists.
pub async fn stop(docker: &Docker, name: &str, timeout: Duration) -> anyhow::Result<bool> {
    match docker
        .stop_container(
            name,
            Some(StopContainerOptions {
                t: Some(timeout.as_secs() as i32),
                ..Default::default()
            }),
        )
        .await
    {
        // 304: already stopped.
        Ok(())
        | Err(DockerError::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(true),
        Err(error) if not_found(&error) => Ok(false),
        Err(error) => Err(error).context(format!("stopping container {name}")),
    }
}

/// One look at a container on its way up: `Ok(true)` once healthy (or running, for an
/// image with no healthcheck), `Ok(false)` while starting, an error once it cannot get there.
pub async fn healthy_yet(docker: &Docker, name: &str) -> anyhow::Result<bool> {
    let Some(existing) = inspect(docker, name).await? else {
        return Err(Permanent::NoSuchContainer(name.into()).into());
    };
    let state = existing.state.unwrap_or_default();
    if !state.running.unwrap_or(false) && !state.restarting.unwrap_or(false) {
        if state.status == Some(bollard::models::ContainerStateStatusEnum::CREATED) {
            return Ok(false);
        }
        return Err(Permanent::Exited {
            name: name.into(),
            code: state.exit_code.unwrap_or(-1),
            logs: last_logs(docker, name, 20).await,
        }
        .into());
    }
    match state.health.and_then(|health| health.status) {
        None | Some(HealthStatusEnum::NONE) | Some(HealthStatusEnum::EMPTY) => {
            Ok(state.running.unwrap_or(false))
        }
        Some(HealthStatusEnum::HEALTHY) => Ok(true),
        Some(HealthStatusEnum::STARTING) => Ok(false),
        Some(HealthStatusEnum::UNHEALTHY) => Err(Permanent::Unhealthy {
            name: name.into(),
            logs: last_logs(docker, name, 20).await,
        }
        .into()),
    }
}

pub async fn last_logs(docker: &Docker, name: &str, lines: usize) -> String {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    let mut stream = docker.logs(name, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&chunk.to_string());
    }
    text
}

/// How much of a migrations folder is read before giving up: SQL is small, and a folder this
/// large is not one.
const MIGRATIONS_ARCHIVE_LIMIT: usize = 16 << 20;

/// The migrations a container's image carries: the folders under `path` (Prisma's layout,
/// `<path>/<name>/migration.sql`), by name, in order. A path the image does not have gives
/// none. Read through the Docker API (`GET /containers/{name}/archive`), so any image will do,
/// whatever runs in it.
pub async fn migrations_in(
    docker: &Docker,
    container: &str,
    path: &str,
) -> anyhow::Result<Vec<String>> {
    let options = DownloadFromContainerOptionsBuilder::default()
        .path(path)
        .build();
    let mut stream = docker.download_from_container(container, Some(options));
    let mut archive = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => archive.extend_from_slice(&bytes),
            Err(error) if not_found(&error) => return Ok(Vec::new()),
            Err(error) => {
                return Err(error).with_context(|| format!("reading {path} in {container}"));
            }
        }
        if archive.len() > MIGRATIONS_ARCHIVE_LIMIT {
            anyhow::bail!("{path} in {container} is over 16 MiB: not a migrations folder");
        }
    }
    migration_names(&archive).with_context(|| format!("reading {path} in {container}"))
}

/// The `<folder>/<name>/migration.sql` entries of a tar archive, by name, sorted. A name that
/// could not be a folder name (a separator, a control character) is refused.
pub fn migration_names(archive: &[u8]) -> anyhow::Result<Vec<String>> {
    let mut names = std::collections::BTreeSet::new();
    for entry in tar::Archive::new(archive).entries()? {
        let entry = entry?;
        let path = entry.path()?;
        let parts: Vec<_> = path.iter().collect();
        if let [_, name, file] = parts.as_slice()
            && *file == "migration.sql"
        {
            let name = name.to_string_lossy().into_owned();
            deployctl_proto::names::container("migration", &name)?;
            names.insert(name);
        }
    }
    Ok(names.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[&str]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for path in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(4);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, path, &b"-- x"[..])
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn migration_names_are_the_folders_holding_a_migration_sql() {
        let names = migration_names(&archive(&[
            "migrations/0002_orders/migration.sql",
            "migrations/0001_init/migration.sql",
            "migrations/migration_lock.toml",
            "migrations/0003_notes/README.md",
        ]))
        .unwrap();
        assert_eq!(names, ["0001_init", "0002_orders"]);
        assert!(migration_names(&archive(&[])).unwrap().is_empty());
    }
}
