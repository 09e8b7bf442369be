//! Recreating a container on a new image, the way Compose does: create before remove.
//!
//! The old container is stopped and renamed aside, the new one is created under the real name
//! and started, and only then is the old one removed. A crash between any two of those calls
//! leaves either the old container (under its own name or aside) or the new one, never
//! nothing, and a retry picks up from whatever it finds.
//!
//! Containers are rebuilt from their own configuration, as Compose created them, with only the
//! image swapped. What the old image baked into that configuration (its env, labels, command,
//! healthcheck) is taken out first, so the new image's defaults apply.

use futures::{StreamExt, TryStreamExt};
use std::{collections::HashMap, time::Duration};

use anyhow::{Context, bail};
use bollard::{
    Docker,
    models::{
        ContainerConfig, ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum,
        EndpointSettings, ImageConfig, NetworkConnectRequest, NetworkingConfig,
    },
    query_parameters::{CreateContainerOptions, RenameContainerOptions},
};

use super::client::{
    COMPOSE_NUMBER_LABEL, COMPOSE_SERVICE_LABEL, container_info, image_info, inspect, remove,
    service_containers, stop,
};
use crate::{Permanent, crash_point};

/// The name an old container waits under while its replacement starts.
pub fn aside_name(name: &str) -> String {
    format!("{name}-deployctl-old")
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

/// Replaces container `name` with one on `image`. Safe to call again after a crash at any
/// point: a container already running `image` is kept, and an old one set aside is reused as
/// the template (and removed once the new one runs).
pub async fn replace_container(
    docker: &Docker,
    name: &str,
    image: &str,
    stop_timeout: Duration,
    config_hashes: &HashMap<String, String>,
) -> anyhow::Result<()> {
    let wanted = image_info(docker, image).await?;
    let aside = aside_name(name);
    let mut existing = inspect(docker, name).await?;
    if let Some(current) = existing.as_ref().map(container_info) {
        let half_made = existing.as_ref().is_some_and(never_started)
            && inspect(docker, &aside).await?.is_some();
        if current.image_id == wanted.id && !half_made {
            if !current.running {
                start(docker, name).await?;
            }
            remove(docker, &aside).await?;
            return Ok(());
        }
        if half_made {
            // Cut short between create and start: it may lack a network, so it is made
            // again from the old one, still set aside.
            remove(docker, name).await?;
        } else {
            // The old container: stop it (cron must never overlap), then set it aside.
            stop(docker, name, stop_timeout).await?;
            crash_point("replace-after-stop");
            remove(docker, &aside).await?;
            rename(docker, name, &aside).await?;
            crash_point("replace-after-rename");
        }
        existing = None;
    }
    let template = match existing {
        Some(template) => template,
        None => inspect(docker, &aside)
            .await?
            .ok_or_else(|| Permanent::NoSuchContainer(name.into()))?,
    };
    let old_image_config = image_config(docker, template.image.as_deref()).await;
    let mut body = recreate_body(&template, &old_image_config, image);
    set_config_hash(&mut body, config_hashes);
    if let Err(error) = create_and_start(docker, name, body, &template).await {
        // Put the old one back under its name, so a plain `compose up` still finds it.
        let _ = remove(docker, name).await;
        let _ = rename(docker, &aside, name).await;
        return Err(error);
    }
    crash_point("replace-after-start");
    remove(docker, &aside).await?;
    Ok(())
}

/// The configuration an image gives its containers; empty when the image is gone.
async fn image_config(docker: &Docker, image: Option<&str>) -> ImageConfig {
    docker
        .inspect_image(image.unwrap_or_default())
        .await
        .ok()
        .and_then(|image| image.config)
        .unwrap_or_default()
}

async fn rename(docker: &Docker, from: &str, to: &str) -> anyhow::Result<()> {
    docker
        .rename_container(
            from,
            RenameContainerOptions {
                name: to.to_string(),
            },
        )
        .await
        .with_context(|| format!("renaming container {from} to {to}"))
}

async fn start(docker: &Docker, name: &str) -> anyhow::Result<()> {
    match docker.start_container(name, None).await {
        // 304: already running.
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        Err(error) => Err(error).context(format!("starting container {name}")),
    }
}

/// Created, and never started: a create cut short before its networks were joined and it
/// was started (a crash in between). Such a container is made again, not started as is.
fn never_started(container: &ContainerInspectResponse) -> bool {
    container.state.as_ref().and_then(|state| state.status)
        == Some(ContainerStateStatusEnum::CREATED)
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
    crash_point("create-before-networks");
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
    start(docker, name).await
}

/// How many containers of a service start, or stop, side by side.
pub const AT_ONCE: usize = 4;

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
    let mut containers = service_containers(docker, project, service).await?;
    // A container created on the new image but never started (a crash between create and
    // start) may lack a network: it is removed, and made again below. One stopped after it
    // ran is started, and counts.
    let mut on_image = 0;
    let mut half_made = Vec::new();
    for container in containers.iter().filter(|c| c.image_id == wanted.id) {
        let inspected = inspect(docker, &container.name).await?;
        if inspected.as_ref().is_some_and(never_started) {
            remove(docker, &container.name).await?;
            half_made.push(container.name.clone());
            continue;
        }
        if !container.running {
            start(docker, &container.name).await?;
        }
        on_image += 1;
    }
    containers.retain(|c| !half_made.contains(&c.name));
    // The newest running member is the one to copy: its networks are all joined.
    containers.sort_by_key(|c| !c.running);
    let Some(template) = containers.first() else {
        bail!("Compose service {service} of project {project} has no container to copy");
    };
    let template = inspect(docker, &template.name)
        .await?
        .with_context(|| format!("container {} vanished", template.name))?;
    let old_image_config = image_config(docker, template.image.as_deref()).await;
    let first_number = containers.iter().map(|c| c.number).max().unwrap_or(0) + 1;
    // A few at a time: twenty workers start in a fraction of twenty starts' time, and the host
    // is not starved (a starved worker misses its activities' heartbeats).
    let starts = (first_number..)
        .take(count.saturating_sub(on_image))
        .map(|number| {
            let name = format!("{project}_{service}_{number}");
            let mut body = recreate_body(&template, &old_image_config, image);
            body.hostname = None;
            set_config_hash(&mut body, config_hashes);
            body.labels
                .get_or_insert_with(HashMap::new)
                .insert(COMPOSE_NUMBER_LABEL.to_string(), number.to_string());
            let template = &template;
            async move {
                create_and_start(docker, &name, body, template).await?;
                crash_point("start-workers-after-one");
                anyhow::Ok(name)
            }
        });
    futures::stream::iter(starts)
        .buffer_unordered(AT_ONCE)
        .try_collect()
        .await
}
