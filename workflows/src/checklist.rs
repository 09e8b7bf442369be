//! ChecklistWorkflow: the seed's monitoring checklist, item by item, for `deployctl check`.
//!
//! The CLI has no way into the stack (no Docker, no HAProxy socket, no database), so the
//! checklist runs where a deploy runs, on the worker, with the deploy's own read activities.
//! Every read goes out at once and fails fast: the checklist reports on the stack as it is, it
//! does not wait for it to recover. Each item passes or fails with what was seen.

use deployctl_activities::{
    database::{DatabaseActivities, MigrationProgress},
    docker::{ContainerInfo, DockerActivities, ServiceRef},
    environments::EnvironmentActivities,
    haproxy::{HaproxyActivities, ServerView},
    health::{CheckHealth, HealthActivities, HealthEndpoints},
    redis::RedisActivities,
    temporal::{Poller, TemporalActivities},
};
use deployctl_proto::v1::Environment;
use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityExecutionError, WorkflowContext, WorkflowResult};

use crate::{check::read, status::describe};

/// The checklist's items, in the seed's order.
pub const API_HEALTH: &str = "api health";
pub const HAPROXY_STATS: &str = "haproxy stats";
pub const CRON: &str = "cron";
pub const WORKERS: &str = "workers";
pub const REDIS: &str = "redis";
pub const MIGRATIONS: &str = "migrations";

/// A worker whose last poll is older than this is not polling: a long poll on an idle queue
/// is renewed about every minute.
const POLL_FRESHNESS_SECONDS: f64 = 90.0;

/// One item of the checklist: passed or not, and what was seen.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Checklist {
    pub environment: String,
    pub items: Vec<Item>,
}

impl Checklist {
    pub fn passed(&self) -> bool {
        !self.items.is_empty() && self.items.iter().all(|item| item.passed)
    }
}

#[workflow]
#[derive(Default)]
pub struct ChecklistWorkflow;

fn item(name: &str, passed: bool, detail: impl Into<String>) -> Item {
    Item {
        name: name.to_string(),
        passed,
        detail: detail.into(),
    }
}

type Read<T> = Result<T, ActivityExecutionError>;

/// The API answers its health path through HAProxy's frontend, as a user's request would.
fn api_health(environment: &Environment, answer: Read<()>) -> Item {
    let url = format!(
        "{}{}",
        environment.frontend_url,
        HealthEndpoints::of(environment).health_path()
    );
    match answer {
        Ok(()) => item(API_HEALTH, true, format!("{url} answers")),
        Err(error) => item(API_HEALTH, false, format!("{url}: {}", describe(&error))),
    }
}

/// HAProxy lists both colours, and exactly one of them carries the traffic.
pub fn haproxy_stats(environment: &Environment, servers: &[ServerView]) -> Item {
    let backend = &environment.haproxy_backend;
    let colours = [&environment.blue_server, &environment.green_server];
    let missing: Vec<&str> = colours
        .iter()
        .filter(|colour| !servers.iter().any(|server| &&server.name == *colour))
        .map(|colour| colour.as_str())
        .collect();
    if !missing.is_empty() {
        return item(
            HAPROXY_STATS,
            false,
            format!("backend {backend} lists no server {}", missing.join(", ")),
        );
    }
    let live: Vec<&str> = servers
        .iter()
        .filter(|server| server.carries_traffic && colours.contains(&&server.name))
        .map(|server| server.name.as_str())
        .collect();
    match live.as_slice() {
        [one] => item(
            HAPROXY_STATS,
            true,
            format!("backend {backend} lists both colours; {one} carries the traffic"),
        ),
        [] => item(
            HAPROXY_STATS,
            false,
            format!("backend {backend}: no colour carries traffic"),
        ),
        many => item(
            HAPROXY_STATS,
            false,
            format!(
                "backend {backend}: {} carry traffic at once",
                many.join(" and ")
            ),
        ),
    }
}

/// Exactly one cron container runs: the seed's jobs must never run twice.
pub fn cron(environment: &Environment, running: &[ContainerInfo]) -> Item {
    let names: Vec<&str> = running.iter().map(|c| c.name.as_str()).collect();
    match names.as_slice() {
        [one] => item(CRON, true, format!("exactly one cron runs: {one}")),
        [] => item(
            CRON,
            false,
            format!(
                "no cron runs ({} is not running)",
                environment.cron_container
            ),
        ),
        many => item(
            CRON,
            false,
            format!("{} crons run at once: {}", many.len(), many.join(", ")),
        ),
    }
}

/// The environment's workers run, as many as it wants, and each polls Temporal.
pub fn workers(
    environment: &Environment,
    containers: &[ContainerInfo],
    pollers: &[Poller],
) -> Item {
    let running: Vec<&ContainerInfo> = containers.iter().filter(|c| c.running).collect();
    let wanted = environment.worker_replicas as usize;
    if running.len() < wanted.max(1) {
        let stopped: Vec<&str> = containers
            .iter()
            .filter(|c| !c.running)
            .map(|c| c.name.as_str())
            .collect();
        let stopped = match stopped.is_empty() {
            true => String::new(),
            false => format!(" (stopped: {})", stopped.join(", ")),
        };
        return item(
            WORKERS,
            false,
            format!("{} of {wanted} workers run{stopped}", running.len()),
        );
    }
    let silent: Vec<&str> = running
        .iter()
        .filter(|worker| {
            !pollers.iter().any(|poller| {
                poller.seconds_since_poll < POLL_FRESHNESS_SECONDS
                    && !worker.hostname.is_empty()
                    && poller.identity.ends_with(&format!("@{}", worker.hostname))
            })
        })
        .map(|worker| worker.name.as_str())
        .collect();
    match silent.is_empty() {
        true => item(
            WORKERS,
            true,
            format!("{} workers run, and each polls Temporal", running.len()),
        ),
        false => item(
            WORKERS,
            false,
            format!("running but not polling Temporal: {}", silent.join(", ")),
        ),
    }
}

fn redis(url: &str, answer: Read<String>) -> Item {
    match answer {
        Ok(answer) if answer == "PONG" => item(REDIS, true, format!("{url} answers PONG")),
        Ok(other) => item(REDIS, false, format!("{url} answers {other:?}, not PONG")),
        Err(error) => item(REDIS, false, format!("{url}: {}", describe(&error))),
    }
}

/// Every migration in `_prisma_migrations` finished: none running, none failed.
pub fn migrations(progress: &MigrationProgress) -> Item {
    if !progress.table_exists {
        return item(MIGRATIONS, false, "_prisma_migrations does not exist");
    }
    if let Some((name, _)) = progress.failed.first() {
        return item(MIGRATIONS, false, format!("migration {name} failed"));
    }
    match progress.running {
        0 => item(
            MIGRATIONS,
            true,
            format!(
                "{} migrations finished, none running or failed",
                progress.finished
            ),
        ),
        running => item(
            MIGRATIONS,
            false,
            format!("{running} migrations still running"),
        ),
    }
}

/// A read's failure as the item's failure.
fn unread(name: &str, what: &str, error: &ActivityExecutionError) -> Item {
    item(name, false, format!("{what}: {}", describe(error)))
}

#[workflow_methods]
impl ChecklistWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        environment: String,
    ) -> WorkflowResult<Checklist> {
        let resolved = ctx
            .execute_activity(
                EnvironmentActivities::resolve_environment,
                environment.clone(),
                read(format!("look up environment {environment}")),
            )
            .await;
        let environment = match resolved {
            Ok(resolved) => resolved,
            Err(error) => {
                return Ok(Checklist {
                    environment,
                    items: vec![item("environment", false, describe(&error))],
                });
            }
        };
        let items = Self::items(ctx, &environment).await;
        Ok(Checklist {
            environment: environment.name.clone(),
            items,
        })
    }
}

impl ChecklistWorkflow {
    async fn items(ctx: &WorkflowContext<Self>, environment: &Environment) -> Vec<Item> {
        let endpoints = HealthEndpoints {
            version_path: Some(String::new()),
            ..HealthEndpoints::of(environment)
        };
        let workers_service = ServiceRef::workers_of(environment);
        let task_queue = environment
            .worker_task_queues
            .first()
            .cloned()
            .unwrap_or_else(|| crate::DEPLOY_TASK_QUEUE.to_string());
        let (health, servers, cron_container, workers_found, pollers, pong, progress) = futures::join!(
            ctx.execute_activity(
                HealthActivities::await_http_health,
                CheckHealth {
                    base_url: environment.frontend_url.clone(),
                    version: String::new(),
                    answers: 1,
                    timeout_seconds: 5,
                    endpoints,
                },
                read("GET /health through HAProxy".into()),
            ),
            ctx.execute_activity(
                HaproxyActivities::read_backend,
                environment.haproxy_backend.clone(),
                read(format!(
                    "read HAProxy backend {}",
                    environment.haproxy_backend
                )),
            ),
            ctx.execute_activity(
                DockerActivities::inspect_container,
                environment.cron_container.clone(),
                read(format!("inspect {}", environment.cron_container)),
            ),
            ctx.execute_activity(
                DockerActivities::list_service,
                workers_service,
                read(format!("list {}", environment.worker_service)),
            ),
            ctx.execute_activity(
                TemporalActivities::read_pollers,
                task_queue.clone(),
                read(format!("pollers of task queue {task_queue}")),
            ),
            async {
                match environment.redis_url.as_str() {
                    "" => None,
                    url => Some(
                        ctx.execute_activity(
                            RedisActivities::ping_redis,
                            url.to_string(),
                            read(format!("PING {url}")),
                        )
                        .await,
                    ),
                }
            },
            ctx.execute_activity(
                DatabaseActivities::read_migrations,
                (),
                read("read _prisma_migrations".into()),
            ),
        );
        let mut items = vec![api_health(environment, health)];
        items.push(match servers {
            Ok(servers) => haproxy_stats(environment, &servers),
            Err(error) => unread(HAPROXY_STATS, "reading the backend", &error),
        });
        items.push(Self::cron(ctx, environment, cron_container).await);
        items.push(match (workers_found, pollers) {
            (Ok(containers), Ok(pollers)) => workers(environment, &containers, &pollers),
            (Err(error), _) => unread(WORKERS, "listing the workers", &error),
            (_, Err(error)) => unread(WORKERS, "reading Temporal's pollers", &error),
        });
        items.push(match pong {
            Some(answer) => redis(&environment.redis_url, answer),
            None => item(REDIS, true, "no redis_url configured: skipped"),
        });
        items.push(match progress {
            Ok(progress) => migrations(&progress),
            Err(error) => unread(MIGRATIONS, "reading _prisma_migrations", &error),
        });
        items
    }

    /// Every running container of the cron's Compose service (or the cron alone, unlabelled).
    async fn cron(
        ctx: &WorkflowContext<Self>,
        environment: &Environment,
        found: Read<Option<ContainerInfo>>,
    ) -> Item {
        let container = match found {
            Ok(Some(container)) => container,
            Ok(None) => {
                return item(
                    CRON,
                    false,
                    format!("no container {}", environment.cron_container),
                );
            }
            Err(error) => return unread(CRON, "inspecting the cron", &error),
        };
        if container.service.is_empty() {
            let running: Vec<ContainerInfo> =
                [container].into_iter().filter(|c| c.running).collect();
            return cron(environment, &running);
        }
        let service = ServiceRef {
            project: environment.compose_project.clone(),
            service: container.service.clone(),
        };
        let listed = ctx
            .execute_activity(
                DockerActivities::list_service,
                service,
                read(format!("list {}", container.service)),
            )
            .await;
        match listed {
            Ok(containers) => {
                let running: Vec<ContainerInfo> =
                    containers.into_iter().filter(|c| c.running).collect();
                cron(environment, &running)
            }
            Err(error) => unread(CRON, "listing the cron's service", &error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment() -> Environment {
        Environment {
            haproxy_backend: "api".into(),
            blue_server: "blue".into(),
            green_server: "green".into(),
            cron_container: "ecomweb_cron".into(),
            worker_replicas: 2,
            ..Default::default()
        }
    }

    fn server(name: &str, carries_traffic: bool) -> ServerView {
        ServerView {
            name: name.into(),
            carries_traffic,
            ..Default::default()
        }
    }

    fn container(name: &str, running: bool, hostname: &str) -> ContainerInfo {
        ContainerInfo {
            name: name.into(),
            running,
            hostname: hostname.into(),
            ..Default::default()
        }
    }

    fn poller(identity: &str, seconds_since_poll: f64) -> Poller {
        Poller {
            identity: identity.into(),
            seconds_since_poll,
        }
    }

    #[test]
    fn haproxy_needs_both_colours_and_exactly_one_live() {
        let env = environment();
        assert!(haproxy_stats(&env, &[server("blue", true), server("green", false)]).passed);
        let both = haproxy_stats(&env, &[server("blue", true), server("green", true)]);
        assert!(!both.passed && both.detail.contains("blue and green carry traffic"));
        let none = haproxy_stats(&env, &[server("blue", false), server("green", false)]);
        assert!(!none.passed && none.detail.contains("no colour"));
        let one = haproxy_stats(&env, &[server("blue", true)]);
        assert!(
            !one.passed && one.detail.contains("no server green"),
            "{}",
            one.detail
        );
    }

    #[test]
    fn the_cron_runs_exactly_once() {
        let env = environment();
        assert!(cron(&env, &[container("ecomweb_cron", true, "")]).passed);
        let twice = cron(
            &env,
            &[
                container("ecomweb_cron", true, ""),
                container("cron_2", true, ""),
            ],
        );
        assert!(!twice.passed);
        assert_eq!(twice.detail, "2 crons run at once: ecomweb_cron, cron_2");
        assert!(!cron(&env, &[]).passed);
    }

    #[test]
    fn workers_must_run_as_many_as_wanted_and_each_poll() {
        let env = environment();
        let both = [container("w1", true, "aaa"), container("w2", true, "bbb")];
        let pollers = [poller("7@aaa", 3.0), poller("7@bbb", 40.0)];
        assert!(workers(&env, &both, &pollers).passed);
        let one_stopped = [container("w1", true, "aaa"), container("w2", false, "bbb")];
        let item = workers(&env, &one_stopped, &pollers);
        assert!(!item.passed);
        assert_eq!(item.detail, "1 of 2 workers run (stopped: w2)");
        let stale = [poller("7@aaa", 3.0), poller("7@bbb", 300.0)];
        let item = workers(&env, &both, &stale);
        assert!(
            !item.passed && item.detail.ends_with("w2"),
            "{}",
            item.detail
        );
    }

    #[test]
    fn migrations_must_all_have_finished() {
        let done = MigrationProgress {
            table_exists: true,
            finished: 3,
            ..Default::default()
        };
        assert!(migrations(&done).passed);
        let failed = MigrationProgress {
            failed: vec![("0004_x".into(), "boom".into())],
            ..done.clone()
        };
        assert_eq!(migrations(&failed).detail, "migration 0004_x failed");
        assert!(!migrations(&MigrationProgress::default()).passed);
    }
}
