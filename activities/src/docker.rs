//! Docker, through bollard: the containers of the seed's stack.
//!
//! Containers are recreated from their own configuration, as Compose created them, with only
//! the image swapped. What the old image baked into that configuration (its env, labels,
//! command, healthcheck) is taken out first, so the new image's defaults apply.
//! Every call is idempotent: a container already on the wanted image is left alone.

use std::{collections::HashMap, time::Duration};

use anyhow::{Context, bail};
use bollard::{
    Docker,
    errors::Error as DockerError,
    models::{
        ContainerConfig, ContainerCreateBody, ContainerInspectResponse, EndpointSettings,
        HealthStatusEnum, ImageConfig, NetworkConnectRequest, NetworkingConfig,
    },
    query_parameters::{
        CreateContainerOptions, InspectContainerOptions, ListContainersOptions, LogsOptionsBuilder,
        RemoveContainerOptions, StopContainerOptions,
    },
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::Permanent;

pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";
pub const COMPOSE_SERVICE_LABEL: &str = "com.docker.compose.service";
pub const COMPOSE_NUMBER_LABEL: &str = "com.docker.compose.container-number";
/// The image declares how many migrations it carries, so the deploy knows what to await.
pub const MIGRATIONS_LABEL: &str = "deployctl.migrations";

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
}

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
    Docker::connect_with_defaults()
        .context("connecting to Docker")?
        .negotiate_version()
        .await
        .context("negotiating the Docker API version")
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

fn container_info(inspect: &ContainerInspectResponse) -> ContainerInfo {
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
        image: config.image.unwrap_or_default(),
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
        if let Some(inspect) = inspect(docker, &id).await? {
            containers.push(container_info(&inspect));
        }
    }
    containers.sort_by_key(|c| (c.number, c.name.clone()));
    Ok(containers)
}

/// The container's own configuration, less what its image put there, on `image`.
pub fn recreate_body(
    container: &ContainerInspectResponse,
    old_image: &ImageConfig,
    image: &str,
) -> ContainerCreateBody {
    let config: ContainerConfig = container.config.clone().unwrap_or_default();
    let id = container.id.clone().unwrap_or_default();
    let without_image_default = |value: Option<Vec<String>>, default: &Option<Vec<String>>| {
        if value == *default { None } else { value }
    };
    let image_env = old_image.env.clone().unwrap_or_default();
    let env: Vec<String> = config
        .env
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| !image_env.contains(entry))
        .collect();
    let image_labels = old_image.labels.clone().unwrap_or_default();
    let labels: HashMap<String, String> = config
        .labels
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, value)| image_labels.get(key) != Some(value))
        .collect();
    // Docker names a container's host after its id unless told otherwise.
    let hostname = config.hostname.filter(|h| !id.starts_with(h.as_str()));
    let healthcheck = config
        .healthcheck
        .filter(|health| Some(health) != old_image.healthcheck.as_ref());
    let endpoints = container
        .network_settings
        .as_ref()
        .and_then(|settings| settings.networks.clone())
        .unwrap_or_default();
    let first_endpoint = endpoints
        .into_iter()
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(network, endpoint)| (network, endpoint_for_recreate(&endpoint, &id)));
    ContainerCreateBody {
        hostname,
        domainname: config.domainname,
        user: config.user.filter(|u| Some(u) != old_image.user.as_ref()),
        exposed_ports: config.exposed_ports,
        tty: config.tty,
        open_stdin: config.open_stdin,
        stdin_once: config.stdin_once,
        env: Some(env),
        cmd: without_image_default(config.cmd, &old_image.cmd),
        entrypoint: without_image_default(config.entrypoint, &old_image.entrypoint),
        healthcheck,
        image: Some(image.to_string()),
        working_dir: config
            .working_dir
            .filter(|w| Some(w) != old_image.working_dir.as_ref()),
        labels: Some(labels),
        stop_signal: config
            .stop_signal
            .filter(|s| Some(s) != old_image.stop_signal.as_ref()),
        stop_timeout: config.stop_timeout,
        host_config: container.host_config.clone(),
        networking_config: first_endpoint.map(|(network, endpoint)| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network, endpoint)])),
        }),
        ..Default::default()
    }
}

/// Labels the container with Compose's hash for its service on the new image, when known.
fn set_config_hash(body: &mut ContainerCreateBody, config_hashes: &HashMap<String, String>) {
    let labels = body.labels.get_or_insert_with(HashMap::new);
    let hash = labels
        .get(COMPOSE_SERVICE_LABEL)
        .and_then(|service| config_hashes.get(service));
    if let Some(hash) = hash.cloned() {
        labels.insert(crate::compose::CONFIG_HASH_LABEL.to_string(), hash);
    }
}

/// Keeps the aliases Compose gave (the service name), less the old container's short id.
fn endpoint_for_recreate(endpoint: &EndpointSettings, old_id: &str) -> EndpointSettings {
    let aliases = endpoint.aliases.clone().map(|aliases| {
        aliases
            .into_iter()
            .filter(|alias| !old_id.starts_with(alias.as_str()))
            .collect()
    });
    EndpointSettings {
        aliases,
        links: endpoint.links.clone(),
        ..Default::default()
    }
}

/// Replaces container `name` with one on `image`; returns the image it had.
/// A container already running `image` is left as it is.
pub async fn replace_container(
    docker: &Docker,
    name: &str,
    image: &str,
    stop_timeout: Duration,
    config_hashes: &HashMap<String, String>,
) -> anyhow::Result<String> {
    let wanted = image_info(docker, image).await?;
    let Some(existing) = inspect(docker, name).await? else {
        return Err(Permanent::NoSuchContainer(name.into()).into());
    };
    let current = container_info(&existing);
    if current.image_id == wanted.id && current.running {
        return Ok(current.image);
    }
    let old_image_config = docker
        .inspect_image(&current.image_id)
        .await
        .ok()
        .and_then(|image| image.config)
        .unwrap_or_default();
    let mut body = recreate_body(&existing, &old_image_config, image);
    set_config_hash(&mut body, config_hashes);
    stop_and_remove(docker, name, stop_timeout).await?;
    create_and_start(docker, name, body, &existing).await?;
    Ok(current.image)
}

async fn create_and_start(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
    template: &ContainerInspectResponse,
) -> anyhow::Result<()> {
    let first_network = body
        .networking_config
        .as_ref()
        .and_then(|config| config.endpoints_config.as_ref())
        .and_then(|endpoints| endpoints.keys().next().cloned());
    docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_string()),
                ..Default::default()
            }),
            body,
        )
        .await
        .with_context(|| format!("creating container {name}"))?;
    // Older engines take one network at create; join the others before starting.
    let template_id = template.id.clone().unwrap_or_default();
    let networks = template
        .network_settings
        .as_ref()
        .and_then(|settings| settings.networks.clone())
        .unwrap_or_default();
    for (network, endpoint) in networks {
        if Some(&network) == first_network.as_ref() {
            continue;
        }
        docker
            .connect_network(
                &network,
                NetworkConnectRequest {
                    container: name.to_string(),
                    endpoint_config: Some(endpoint_for_recreate(&endpoint, &template_id)),
                },
            )
            .await
            .with_context(|| format!("connecting {name} to network {network}"))?;
    }
    docker
        .start_container(name, None)
        .await
        .with_context(|| format!("starting container {name}"))
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
        Ok(()) => Ok(true),
        Err(error) if not_found(&error) => Ok(true),
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

/// Starts containers of a Compose service on `image` until `count` of them run it.
/// New containers copy an existing one of the service and get the next container numbers,
/// so `docker-compose ps` and `--scale` count them. Returns the names it started.
pub async fn start_service_containers(
    docker: &Docker,
    project: &str,
    service: &str,
    image: &str,
    count: usize,
    config_hashes: &HashMap<String, String>,
) -> anyhow::Result<Vec<String>> {
    let wanted = image_info(docker, image).await?;
    let containers = service_containers(docker, project, service).await?;
    let Some(template) = containers.first() else {
        bail!("Compose service {service} of project {project} has no container to copy");
    };
    let template = inspect(docker, &template.name)
        .await?
        .with_context(|| format!("container {} vanished", template.name))?;
    let old_image_config = docker
        .inspect_image(template.image.as_deref().unwrap_or_default())
        .await
        .ok()
        .and_then(|image| image.config)
        .unwrap_or_default();
    let already = containers
        .iter()
        .filter(|c| c.image_id == wanted.id && c.running)
        .count();
    let mut next_number = containers.iter().map(|c| c.number).max().unwrap_or(0) + 1;
    let mut started = Vec::new();
    for _ in already..count {
        let name = format!("{project}_{service}_{next_number}");
        let mut body = recreate_body(&template, &old_image_config, image);
        body.hostname = None;
        set_config_hash(&mut body, config_hashes);
        body.labels
            .get_or_insert_with(HashMap::new)
            .insert(COMPOSE_NUMBER_LABEL.to_string(), next_number.to_string());
        create_and_start(docker, &name, body, &template).await?;
        started.push(name);
        next_number += 1;
    }
    Ok(started)
}

/// Input of `replace_container`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplaceContainer {
    pub container: String,
    pub image: String,
    pub stop_timeout_seconds: u64,
    /// Compose config hash by service, for the new containers' labels.
    #[serde(default)]
    pub config_hashes: HashMap<String, String>,
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

/// The Docker activities. One engine connection, shared.
pub struct DockerActivities {
    pub docker: Docker,
}

#[temporalio_macros::activities]
impl DockerActivities {
    /// Resolves an app image and reads how many migrations it carries.
    #[activity]
    pub async fn inspect_image(
        self: std::sync::Arc<Self>,
        _ctx: temporalio_sdk::activities::ActivityContext,
        image: String,
    ) -> Result<ImageInfo, temporalio_sdk::activities::ActivityError> {
        image_info(&self.docker, &image)
            .await
            .map_err(crate::failure)
    }

    /// Reads one container; `None` when it does not exist.
    #[activity]
    pub async fn inspect_container(
        self: std::sync::Arc<Self>,
        _ctx: temporalio_sdk::activities::ActivityContext,
        name: String,
    ) -> Result<Option<ContainerInfo>, temporalio_sdk::activities::ActivityError> {
        container(&self.docker, &name).await.map_err(crate::failure)
    }

    /// Recreates a container on a new image; returns the image it had.
    #[activity]
    pub async fn replace_container(
        self: std::sync::Arc<Self>,
        _ctx: temporalio_sdk::activities::ActivityContext,
        input: ReplaceContainer,
    ) -> Result<String, temporalio_sdk::activities::ActivityError> {
        replace_container(
            &self.docker,
            &input.container,
            &input.image,
            Duration::from_secs(input.stop_timeout_seconds),
            &input.config_hashes,
        )
        .await
        .map_err(crate::failure)
    }

    /// Waits until Docker reports the container healthy.
    #[activity]
    pub async fn await_healthy(
        self: std::sync::Arc<Self>,
        ctx: temporalio_sdk::activities::ActivityContext,
        input: AwaitHealthy,
    ) -> Result<ContainerInfo, temporalio_sdk::activities::ActivityError> {
        let what = format!("{} healthy", input.container);
        let timeout = Duration::from_secs(input.timeout_seconds);
        crate::poll_until(&ctx, &what, timeout, || async {
            if healthy_yet(&self.docker, &input.container).await? {
                return container(&self.docker, &input.container).await;
            }
            Ok(None)
        })
        .await
    }

    /// Stops a container gracefully, without removing it. Absent or stopped is fine.
    #[activity]
    pub async fn stop_container(
        self: std::sync::Arc<Self>,
        _ctx: temporalio_sdk::activities::ActivityContext,
        input: ReplaceContainer,
    ) -> Result<(), temporalio_sdk::activities::ActivityError> {
        stop(
            &self.docker,
            &input.container,
            Duration::from_secs(input.stop_timeout_seconds),
        )
        .await
        .map(drop)
        .map_err(crate::failure)
    }

    /// Lists the containers of a Compose service.
    #[activity]
    pub async fn list_service(
        self: std::sync::Arc<Self>,
        _ctx: temporalio_sdk::activities::ActivityContext,
        service: ServiceRef,
    ) -> Result<Vec<ContainerInfo>, temporalio_sdk::activities::ActivityError> {
        service_containers(&self.docker, &service.project, &service.service)
            .await
            .map_err(crate::failure)
    }

    /// Starts workers on the new image until `count` run it, and waits until they are healthy.
    #[activity]
    pub async fn start_workers(
        self: std::sync::Arc<Self>,
        ctx: temporalio_sdk::activities::ActivityContext,
        input: StartWorkers,
    ) -> Result<Vec<String>, temporalio_sdk::activities::ActivityError> {
        let started = start_service_containers(
            &self.docker,
            &input.service.project,
            &input.service.service,
            &input.image,
            input.count as usize,
            &input.config_hashes,
        )
        .await
        .map_err(crate::failure)?;
        let wanted = image_info(&self.docker, &input.image)
            .await
            .map_err(crate::failure)?;
        let timeout = Duration::from_secs(input.timeout_seconds);
        let what = format!("{} workers on {} healthy", input.count, input.image);
        crate::poll_until(&ctx, &what, timeout, || async {
            let containers =
                service_containers(&self.docker, &input.service.project, &input.service.service)
                    .await?;
            let mut new_ones = Vec::new();
            for worker in containers.iter().filter(|c| c.image_id == wanted.id) {
                if !healthy_yet(&self.docker, &worker.name).await? {
                    return Ok(None);
                }
                new_ones.push(worker.name.clone());
            }
            Ok((new_ones.len() >= input.count as usize).then_some(()))
        })
        .await?;
        Ok(started)
    }

    /// Stops (SIGTERM, so in-flight tasks finish) and removes workers not on `keep_image`.
    #[activity]
    pub async fn drain_workers(
        self: std::sync::Arc<Self>,
        ctx: temporalio_sdk::activities::ActivityContext,
        input: DrainWorkers,
    ) -> Result<Vec<String>, temporalio_sdk::activities::ActivityError> {
        let keep = image_info(&self.docker, &input.keep_image)
            .await
            .map_err(crate::failure)?;
        let containers =
            service_containers(&self.docker, &input.service.project, &input.service.service)
                .await
                .map_err(crate::failure)?;
        let mut removed = Vec::new();
        for old in containers.into_iter().filter(|c| c.image_id != keep.id) {
            let _ = ctx.record_heartbeat(format!("draining {}", old.name)).await;
            stop_and_remove(
                &self.docker,
                &old.name,
                Duration::from_secs(input.stop_timeout_seconds),
            )
            .await
            .map_err(crate::failure)?;
            removed.push(old.name);
        }
        Ok(removed)
    }
}
