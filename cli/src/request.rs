//! The deploy a `start` asks for: the options a person picks on the command line, and the
//! request the workflow takes, with Compose's config hashes worked out here (the worker has
//! no Compose file).

use deployctl_proto::v1::{BakeOptions, DeployRequest, GateExpiry, WorkerRollOptions};

#[derive(clap::Args, Clone)]
pub struct DeployOptions {
    /// Hold the deploy before the traffic switch until `deployctl approve`.
    #[arg(long)]
    pub approve_before_switch: bool,
    /// The approval gate's deadline in seconds (0: none).
    #[arg(long, env = "DEPLOYCTL_APPROVAL_TIMEOUT", default_value_t = 3600)]
    pub approval_timeout: u32,
    /// What the gate does at its deadline.
    #[arg(long, value_enum, default_value_t = Expiry::Reject)]
    pub on_approval_timeout: Expiry,
    /// Seconds the old colour stays warm after the switch, with the new one watched.
    #[arg(long, env = "DEPLOYCTL_BAKE_SECONDS", default_value_t = 5)]
    pub bake_seconds: u32,
    /// Roll back by itself when more than this share of the new colour's answers are 5xx.
    #[arg(long, default_value_t = 0.05)]
    pub bake_max_5xx_ratio: f64,
    /// ...and at least this many 5xx were seen.
    #[arg(long, default_value_t = 3)]
    pub bake_min_5xx: u32,
    /// Worker containers after the deploy; by default the environment's `worker_replicas`.
    #[arg(long)]
    pub workers: Option<u32>,
    /// Ramp the new worker version before it becomes Current, e.g. `10,50` (percent of new
    /// workflows), each step held for `--worker-ramp-pause` seconds.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=99))]
    pub worker_ramp: Vec<u32>,
    #[arg(long, default_value_t = 30)]
    pub worker_ramp_pause: u32,
    /// How long the old worker version may keep open Pinned workflows before the deploy fails
    /// and names them.
    #[arg(long, default_value_t = 600)]
    pub drain_timeout: u32,
    /// New worker replicas started before the hand-over; the rest start once the old ones are
    /// gone (0: all at once).
    #[arg(long, default_value_t = 0)]
    pub worker_surge: u32,
}

#[derive(clap::ValueEnum, Clone, Copy)]
pub enum Expiry {
    Reject,
    Proceed,
}

/// The workflow input for a deploy of `version`, as `start` (and `serve`, for each push) sends it.
pub fn deploy_request(
    compose_file: &std::path::Path,
    environment: deployctl_proto::v1::Environment,
    version: String,
    options: DeployOptions,
) -> DeployRequest {
    let hashes = |variables: Vec<(String, Option<String>)>| {
        crate::compose::config_hashes(compose_file, &variables).unwrap_or_else(|error| {
            eprintln!("note: Compose will not see the deploy as up to date: {error:#}");
            Default::default()
        })
    };
    let deployed = environment
        .images_by_variable(&version)
        .into_iter()
        .map(|(variable, image)| (variable, Some(image)))
        .collect();
    let as_now = environment
        .image_variables
        .iter()
        .map(|variable| (variable.clone(), None))
        .collect();
    // Two runs of the Compose tool (about 0.7 s each for docker-compose v1), side by side.
    let (compose_config_hashes, previous_config_hashes) = std::thread::scope(|scope| {
        let previous = scope.spawn(|| hashes(as_now));
        (hashes(deployed), previous.join().unwrap_or_default())
    });
    DeployRequest {
        compose_config_hashes,
        previous_config_hashes,
        version,
        approve_before_switch: options.approve_before_switch,
        requested_by: std::env::var("USER").unwrap_or_else(|_| "deployctl".into()),
        approval_timeout_seconds: options.approval_timeout,
        approval_expiry: match options.on_approval_timeout {
            Expiry::Reject => GateExpiry::Reject,
            Expiry::Proceed => GateExpiry::Proceed,
        } as i32,
        bake: Some(BakeOptions {
            seconds: options.bake_seconds,
            max_5xx_ratio: options.bake_max_5xx_ratio,
            min_5xx: options.bake_min_5xx,
        }),
        worker_roll: Some(WorkerRollOptions {
            ramp_percentages: options.worker_ramp,
            ramp_pause_seconds: options.worker_ramp_pause,
            drain_timeout_seconds: options.drain_timeout,
            surge: options.worker_surge,
            replicas: options.workers.unwrap_or_default(),
        }),
        environment_name: environment.name,
        environment: None,
    }
}
