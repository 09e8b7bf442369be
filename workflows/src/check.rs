//! CheckEnvironmentWorkflow: does an environment's configuration match the running stack?
//!
//! `deployctl config` runs it before anyone deploys to a new environment. It reads, on the
//! worker that would deploy, everything a deploy touches (the colours, cron and worker
//! containers, the HAProxy backend and its servers, each colour's health path, the image's
//! migrations folder) with the deploy's own activities, changes nothing, and names each
//! setting that does not match.

use std::time::Duration;

use deployctl_activities::{
    docker::{ContainerInfo, DockerActivities, ListMigrations, ServiceRef},
    environments::EnvironmentActivities,
    haproxy::HaproxyActivities,
    health::{CheckHealth, HealthActivities, HealthEndpoints},
};
use deployctl_proto::v1::{Colour, Environment};
use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowResult};

use crate::{
    plan::{colour_name, migrations_path, names},
    status::describe,
};

/// What the check found: each setting it confirmed, and each that does not match.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnvironmentReport {
    pub environment: String,
    pub matches: Vec<String>,
    pub problems: Vec<String>,
}

#[workflow]
#[derive(Default)]
pub struct CheckEnvironmentWorkflow {
    report: EnvironmentReport,
}

/// Reads fail fast here: the check reports, it does not wait for the stack to recover (and
/// the monitoring checklist reads the same way).
pub(crate) fn read(summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(20))
        .retry_policy(RetryPolicy::builder().maximum_attempts(2).build())
        .summary(summary)
        .build()
}

impl CheckEnvironmentWorkflow {
    fn found(ctx: &WorkflowContext<Self>, ok: bool, text: String) {
        ctx.state_mut(|s| match ok {
            true => s.report.matches.push(text),
            false => s.report.problems.push(text),
        });
    }

    async fn containers(ctx: &WorkflowContext<Self>, environment: &Environment) {
        let colours = [Colour::Blue, Colour::Green].map(|colour| {
            (
                format!("{} container", colour_name(colour)),
                names(environment, colour).container.to_string(),
            )
        });
        let cron = (
            "cron container".to_string(),
            environment.cron_container.clone(),
        );
        for (what, name) in colours.into_iter().chain([cron]) {
            if name.is_empty() {
                continue;
            }
            let found = ctx
                .execute_activity(
                    DockerActivities::inspect_container,
                    name.clone(),
                    read(format!("inspect {name}")),
                )
                .await;
            match found {
                Ok(Some(container)) => Self::image_of(ctx, environment, &what, &container),
                Ok(None) => Self::found(ctx, false, format!("{what} {name}: no such container")),
                Err(error) => {
                    Self::found(ctx, false, format!("{what} {name}: {}", describe(&error)))
                }
            }
        }
    }

    fn image_of(
        ctx: &WorkflowContext<Self>,
        environment: &Environment,
        what: &str,
        container: &ContainerInfo,
    ) {
        let repository = format!("{}:", environment.image_repository);
        let ok = container.image.starts_with(&repository);
        let text = match ok {
            true => format!("{what} {} runs {}", container.name, container.image),
            false => format!(
                "{what} {} runs {}, not an image of image_repository {}",
                container.name, container.image, environment.image_repository
            ),
        };
        Self::found(ctx, ok, text);
    }

    async fn workers(ctx: &WorkflowContext<Self>, environment: &Environment) {
        if environment.worker_service.is_empty() {
            return;
        }
        let service = format!(
            "{}/{}",
            environment.compose_project, environment.worker_service
        );
        let workers = ctx
            .execute_activity(
                DockerActivities::list_service,
                ServiceRef::workers_of(environment),
                read(format!("list {service}")),
            )
            .await;
        match workers {
            Ok(workers) if workers.is_empty() => Self::found(
                ctx,
                false,
                format!(
                    "worker service {service}: no containers (compose_project, worker_service)"
                ),
            ),
            Ok(workers) => Self::found(
                ctx,
                true,
                format!(
                    "worker service {service}: {} containers, the environment wants {}",
                    workers.len(),
                    environment.worker_replicas
                ),
            ),
            Err(error) => Self::found(
                ctx,
                false,
                format!("worker service {service}: {}", describe(&error)),
            ),
        }
    }

    async fn backend(ctx: &WorkflowContext<Self>, environment: &Environment) {
        let backend = &environment.haproxy_backend;
        let servers = ctx
            .execute_activity(
                HaproxyActivities::read_backend,
                backend.clone(),
                read(format!("read HAProxy backend {backend}")),
            )
            .await;
        let servers = match servers {
            Ok(servers) if !servers.is_empty() => servers,
            Ok(_) => {
                return Self::found(
                    ctx,
                    false,
                    format!("HAProxy backend {backend}: no such backend, or no servers"),
                );
            }
            Err(error) => {
                return Self::found(
                    ctx,
                    false,
                    format!("HAProxy backend {backend}: {}", describe(&error)),
                );
            }
        };
        let known: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
        for server in [&environment.blue_server, &environment.green_server] {
            let ok = known.contains(&server.as_str());
            let text = match ok {
                true => format!("HAProxy server {backend}/{server} exists"),
                false => format!(
                    "HAProxy backend {backend} has no server {server} (it has: {})",
                    known.join(", ")
                ),
            };
            Self::found(ctx, ok, text);
        }
    }

    /// Each colour that runs answers its health path, and its image carries migrations where
    /// the environment says.
    async fn colours(ctx: &WorkflowContext<Self>, environment: &Environment) {
        for colour in [Colour::Blue, Colour::Green] {
            let container = names(environment, colour).container.to_string();
            let url = format!("http://{container}:{}", environment.api_port);
            // Health alone: a colour's version is not known here.
            let endpoints = HealthEndpoints {
                version_path: Some(String::new()),
                ..HealthEndpoints::of(environment)
            };
            let path = endpoints.health_path().to_string();
            let health = ctx
                .execute_activity(
                    HealthActivities::await_http_health,
                    CheckHealth {
                        base_url: url.clone(),
                        version: String::new(),
                        answers: 1,
                        timeout_seconds: 5,
                        endpoints,
                    },
                    read(format!("check {container}'s health")),
                )
                .await;
            match health {
                Ok(()) => Self::found(ctx, true, format!("{url}{path} answers")),
                Err(error) => Self::found(
                    ctx,
                    false,
                    format!("{url}{path} (health_path, api_port): {}", describe(&error)),
                ),
            }
            let migrations = ctx
                .execute_activity(
                    DockerActivities::list_migrations,
                    ListMigrations {
                        container: container.clone(),
                        path: migrations_path(environment).to_string(),
                    },
                    read(format!("list {container}'s migrations")),
                )
                .await;
            match migrations {
                Ok(found) if !found.is_empty() => Self::found(
                    ctx,
                    true,
                    format!(
                        "{container} carries {} migrations in {}",
                        found.len(),
                        migrations_path(environment)
                    ),
                ),
                Ok(_) => Self::found(
                    ctx,
                    false,
                    format!(
                        "{container} carries no migrations in {} (migrations_path): the gate would await none",
                        migrations_path(environment)
                    ),
                ),
                Err(error) => Self::found(
                    ctx,
                    false,
                    format!("{container}'s migrations: {}", describe(&error)),
                ),
            }
        }
    }
}

#[workflow_methods]
impl CheckEnvironmentWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        environment: String,
    ) -> WorkflowResult<EnvironmentReport> {
        ctx.state_mut(|s| s.report.environment = environment.clone());
        let resolved = ctx
            .execute_activity(
                EnvironmentActivities::resolve_environment,
                environment.clone(),
                read(format!("look up environment {environment}")),
            )
            .await;
        match resolved {
            Ok(resolved) => {
                Self::containers(ctx, &resolved).await;
                Self::workers(ctx, &resolved).await;
                Self::backend(ctx, &resolved).await;
                Self::colours(ctx, &resolved).await;
            }
            Err(error) => Self::found(ctx, false, describe(&error)),
        }
        Ok(ctx.state(|s| s.report.clone()))
    }
}
