//! Preflight: everything the deploy can check before anything changes, and the Plan it leaves
//! for every later step (and for compensation).
//!
//! The reads go out together, in one workflow task, and their answers are then checked one by
//! one in the runbook's order, so that the first problem named is the one a person would meet
//! first. Deploys begun before that release read one thing at a time, and replay so.

use deployctl_activities::{
    docker::{ContainerInfo, DockerActivities, ImageInfo, ServiceRef},
    environments::EnvironmentActivities,
    haproxy::{HaproxyActivities, ServerRef, ServerView},
};
use deployctl_proto::v1::{Colour, DeployRequest, Environment};
use temporalio_sdk::{MemoValue, WorkflowContext};

use crate::{
    DeployWorkflow,
    options::quick,
    plan::{self, choose_colours, colour_name, names},
    status::{StepResult, Stop, describe, step},
    steps::inspect,
};

/// From this release on the worker's configuration defines the environment (a patch, so that
/// deploys started earlier replay as they ran).
const WORKER_OWNED_ENVIRONMENTS: &str = "worker-owned-environments";

/// From this release on the plan is in the workflow's memo, for the Web UI (a patch, as above).
const PLAN_IN_MEMO: &str = "plan-in-memo";
/// From this release on, who asked for the deploy is in its memo (a patch, as above).
const REQUESTED_BY_IN_MEMO: &str = "requested-by-in-memo";

/// From this release on, independent work runs side by side: preflight's reads, and the cron
/// roll beside the worker roll (a patch, as above).
const SIDE_BY_SIDE: &str = "side-by-side";

/// What preflight learnt, which every later step (and compensation) uses.
#[derive(Clone)]
pub(crate) struct Plan {
    pub request: DeployRequest,
    pub environment: Environment,
    pub image: String,
    /// The workers' image: `image`, unless the environment has a worker image of its own.
    pub worker_image: String,
    pub migrations: u32,
    pub live: Option<Colour>,
    pub target: Colour,
    /// What runs before the deploy, so that a rollback can put it back.
    pub previous_cron_image: String,
    /// The idle colour's image before this deploy replaced it.
    pub previous_target_image: String,
    pub previous_worker_image: String,
    pub worker_count: u32,
    /// Independent steps run at the same time (deploys begun before that release: in turn).
    pub side_by_side: bool,
}

impl Plan {
    /// The colour that is not the target: the one live now, or blue on a first deploy.
    pub fn old(&self) -> Colour {
        match self.target {
            Colour::Green => Colour::Blue,
            _ => Colour::Green,
        }
    }

    pub fn colour_url(&self, colour: Colour) -> String {
        format!(
            "http://{}:{}",
            names(&self.environment, colour).container,
            self.environment.api_port
        )
    }

    pub fn workers(&self) -> ServiceRef {
        ServiceRef::workers_of(&self.environment)
    }

    /// Compose's config hashes for containers on `image`: the new image's, or (for what a
    /// rollback puts back) the ones of the images deployed before.
    pub fn config_hashes(&self, image: &str) -> &std::collections::HashMap<String, String> {
        if image == self.image || image == self.worker_image {
            &self.request.compose_config_hashes
        } else {
            &self.request.previous_config_hashes
        }
    }

    /// The plan in one line, for a notification: `green on ecomweb-api:v2, then 2 workers`.
    pub fn describe(&self) -> String {
        format!(
            "{} on {}, traffic from {}, then {} workers",
            colour_name(self.target),
            self.image,
            self.live.map(colour_name).unwrap_or("none"),
            self.worker_count
        )
    }

    pub fn server(&self, colour: Colour) -> ServerRef {
        ServerRef {
            backend: self.environment.haproxy_backend.clone(),
            server: names(&self.environment, colour).server.to_string(),
        }
    }
}

/// What the stack looks like before the deploy: the answers preflight checks.
struct Readings {
    image: ImageInfo,
    servers: Vec<ServerView>,
    blue: ContainerInfo,
    green: ContainerInfo,
    cron: ContainerInfo,
    workers: Vec<ContainerInfo>,
}

/// Checks everything it can before anything changes: the image exists, HAProxy names both
/// colours and exactly one (or none) is live, and every container the deploy touches exists.
pub(crate) async fn preflight(
    ctx: &WorkflowContext<DeployWorkflow>,
    request: &DeployRequest,
) -> StepResult<Plan> {
    step(
        ctx,
        plan::PREFLIGHT,
        format!("checking {}", request.version),
        async {
            let environment = environment(ctx, request).await?;
            ctx.state_mut(|s| s.notify_url = environment.notify_url.clone());
            // Whoever started this deploy (deployctl, the Web UI, the temporal CLI), every name
            // it passes on to Docker, HAProxy or .env must hold to its grammar first.
            deployctl_proto::names::environment(&environment)
                .and_then(|()| deployctl_proto::names::version(&request.version))
                .map_err(|refused| Stop::Failed(format!("refused before any change: {refused}")))?;
            let side_by_side = ctx.patched(SIDE_BY_SIDE);
            let readings = if side_by_side {
                read_at_once(ctx, request, &environment).await?
            } else {
                read_one_by_one(ctx, request, &environment).await?
            };
            let plan = plan_from(ctx, request, environment, readings, side_by_side)?;
            remember(ctx, &plan);
            Ok(plan)
        },
    )
    .await
}

/// Every read in one workflow task; their answers are checked in the runbook's order.
async fn read_at_once(
    ctx: &WorkflowContext<DeployWorkflow>,
    request: &DeployRequest,
    environment: &Environment,
) -> StepResult<Readings> {
    let image = environment.image(&request.version);
    let worker_image = environment.worker_image(&request.version);
    let (info, worker_info, servers, blue, green, cron, workers) = futures::join!(
        inspect_image(ctx, &image),
        async {
            // Only an environment with a worker image of its own has a second image to find.
            match worker_image != image {
                true => inspect_image(ctx, &worker_image).await.map(drop),
                false => Ok(()),
            }
        },
        read_backend(ctx, environment),
        inspect(ctx, names(environment, Colour::Blue).container),
        inspect(ctx, names(environment, Colour::Green).container),
        inspect(ctx, &environment.cron_container),
        list_workers(ctx, environment),
    );
    let image = info?;
    worker_info?;
    let servers = servers?;
    // HAProxy's answer is checked before the containers', as when they were read in turn.
    choose_colours(environment, &servers).map_err(|e| Stop::Failed(e.to_string()))?;
    Ok(Readings {
        image,
        servers,
        blue: blue?,
        green: green?,
        cron: cron?,
        workers: workers?,
    })
}

/// The reads of deploys begun before `SIDE_BY_SIDE`: one at a time, each checked as it came.
async fn read_one_by_one(
    ctx: &WorkflowContext<DeployWorkflow>,
    request: &DeployRequest,
    environment: &Environment,
) -> StepResult<Readings> {
    let image = environment.image(&request.version);
    let info = inspect_image(ctx, &image).await?;
    let worker_image = environment.worker_image(&request.version);
    if worker_image != image {
        inspect_image(ctx, &worker_image).await?;
    }
    let servers = read_backend(ctx, environment).await?;
    let (live, _) =
        choose_colours(environment, &servers).map_err(|e| Stop::Failed(e.to_string()))?;
    let blue = inspect(ctx, names(environment, Colour::Blue).container).await?;
    if live == Some(Colour::Blue) {
        not_live_already(request, Colour::Blue, &blue, &info)?;
    }
    let green = inspect(ctx, names(environment, Colour::Green).container).await?;
    if live == Some(Colour::Green) {
        not_live_already(request, Colour::Green, &green, &info)?;
    }
    let cron = inspect(ctx, &environment.cron_container).await?;
    let workers = list_workers(ctx, environment).await?;
    Ok(Readings {
        image: info,
        servers,
        blue,
        green,
        cron,
        workers,
    })
}

/// The Plan from the readings, once they pass every check (pure: no activity).
fn plan_from(
    ctx: &WorkflowContext<DeployWorkflow>,
    request: &DeployRequest,
    environment: Environment,
    readings: Readings,
    side_by_side: bool,
) -> StepResult<Plan> {
    let image = environment.image(&request.version);
    let worker_image = environment.worker_image(&request.version);
    let (live, target) =
        choose_colours(&environment, &readings.servers).map_err(|e| Stop::Failed(e.to_string()))?;
    let colour = |colour| match colour {
        Colour::Blue => &readings.blue,
        _ => &readings.green,
    };
    let live_image = match live {
        Some(live) => {
            not_live_already(request, live, colour(live), &readings.image)?;
            colour(live).image.clone()
        }
        None => String::new(),
    };
    let running = readings.workers.iter().filter(|w| w.running).count() as u32;
    let wanted = match request.worker_roll.as_ref().map(|roll| roll.replicas) {
        Some(replicas) if replicas > 0 => replicas,
        _ => environment.worker_replicas,
    };
    let worker_count = match wanted {
        0 => running.max(1),
        replicas => replicas,
    };
    if let Some(notice) = plan::worker_drift(&environment.worker_service, running, worker_count) {
        ctx.state_mut(|s| s.status.notices.push(notice));
    }
    let previous_worker_image = readings
        .workers
        .iter()
        .find(|w| w.running)
        .or(readings.workers.first())
        .map(|w| w.image.clone())
        .unwrap_or_else(|| readings.cron.image.clone());
    ctx.state_mut(|s| {
        s.status.image = image.clone();
        s.status.previous_image = live_image.clone();
        s.status.live_colour = live.unwrap_or_default() as i32;
        s.status.target_colour = target as i32;
    });
    Ok(Plan {
        request: request.clone(),
        image,
        worker_image,
        migrations: readings.image.migrations,
        live,
        target,
        previous_cron_image: readings.cron.image,
        previous_target_image: colour(target).image.clone(),
        previous_worker_image,
        worker_count,
        side_by_side,
        environment,
    })
}

/// The plan in the workflow's memo, where the Web UI shows it beside the run: colours, images,
/// workers. (Deploys begun before that release have none.)
fn remember(ctx: &WorkflowContext<DeployWorkflow>, plan: &Plan) {
    if !ctx.patched(PLAN_IN_MEMO) {
        return;
    }
    let colour = |colour: Option<Colour>| colour.map(colour_name).unwrap_or("none");
    let memo = serde_json::json!({
        "environment": plan.environment.name,
        "version": plan.request.version,
        "live_colour": colour(plan.live),
        "target_colour": colour(Some(plan.target)),
        "image": plan.image,
        "previous_target_image": plan.previous_target_image,
        "worker_image": plan.worker_image,
        "previous_worker_image": plan.previous_worker_image,
        "previous_cron_image": plan.previous_cron_image,
        "workers": plan.worker_count,
    });
    // A value that cannot be written emits no command, so the history is the same either way.
    if let Err(error) = ctx.upsert_memo([("plan", Some(MemoValue::new(memo)))]) {
        tracing::warn!(%error, "the plan could not be written to the memo");
    }
    // `deployctl start` writes who asked as it starts the run; a deploy the push queue starts
    // as its child (which takes no memo) writes it here.
    if ctx.patched(REQUESTED_BY_IN_MEMO) {
        let requested_by = MemoValue::new(plan.request.requested_by.clone());
        if let Err(error) =
            ctx.upsert_memo([(crate::visibility::MEMO_REQUESTED_BY, Some(requested_by))])
        {
            tracing::warn!(%error, "who asked could not be written to the memo");
        }
    }
}

/// Refuses a deploy of the version the live colour already runs.
fn not_live_already(
    request: &DeployRequest,
    live: Colour,
    found: &ContainerInfo,
    image: &ImageInfo,
) -> StepResult<()> {
    if found.image_id == image.id {
        return Err(Stop::Failed(format!(
            "{} is already live on {}: nothing to deploy",
            request.version,
            colour_name(live)
        )));
    }
    Ok(())
}

async fn inspect_image(
    ctx: &WorkflowContext<DeployWorkflow>,
    image: &str,
) -> StepResult<ImageInfo> {
    Ok(ctx
        .execute_activity(
            DockerActivities::inspect_image,
            image.to_string(),
            quick(format!("find image {image}")),
        )
        .await?)
}

async fn read_backend(
    ctx: &WorkflowContext<DeployWorkflow>,
    environment: &Environment,
) -> StepResult<Vec<ServerView>> {
    let backend = &environment.haproxy_backend;
    Ok(ctx
        .execute_activity(
            HaproxyActivities::read_backend,
            backend.clone(),
            quick(format!("read HAProxy backend {backend}")),
        )
        .await?)
}

async fn list_workers(
    ctx: &WorkflowContext<DeployWorkflow>,
    environment: &Environment,
) -> StepResult<Vec<ContainerInfo>> {
    Ok(ctx
        .execute_activity(
            DockerActivities::list_service,
            ServiceRef::workers_of(environment),
            quick(format!("list {} containers", environment.worker_service)),
        )
        .await?)
}

/// The environment the request names, as the worker's configuration defines it. A request
/// that brings its own names is refused: the worker holds the Docker socket, and takes no
/// container or backend names from whoever can reach Temporal. (Deploys started before this
/// release carried their environment, and replay as they ran.)
async fn environment(
    ctx: &WorkflowContext<DeployWorkflow>,
    request: &DeployRequest,
) -> StepResult<Environment> {
    if !ctx.patched(WORKER_OWNED_ENVIRONMENTS) {
        let mut inline = request
            .environment
            .clone()
            .ok_or_else(|| Stop::Failed("the request names no environment".into()))?;
        // Environments then had no endpoint settings: the sample app's were the rule.
        inline.version_path = "/version".into();
        return Ok(inline);
    }
    if request.environment.is_some() {
        return Err(Stop::Failed(
            "refused before any change: the request carries its own environment; name one \
             (environment_name) and the worker's configuration supplies it"
                .into(),
        ));
    }
    let name = &request.environment_name;
    deployctl_proto::names::container("environment name", name)
        .map_err(|refused| Stop::Failed(format!("refused before any change: {refused}")))?;
    ctx.execute_activity(
        EnvironmentActivities::resolve_environment,
        name.clone(),
        quick(format!("look up environment {name}")),
    )
    .await
    .map_err(|error| Stop::Failed(format!("refused before any change: {}", describe(&error))))
}
