//! The deploy's decisions, as pure functions: which colour is live, which one the deploy
//! targets, and the runbook's steps in order. No I/O here, so it is unit-tested directly and
//! is deterministic by construction.

use deployctl_activities::haproxy::{ServerCounters, ServerView};
use deployctl_proto::v1::{BakeOptions, Colour, DeployStatus, Environment, Phase};

/// The runbook, in order. `status` lists every step from the start, so a reader sees what is
/// still to come.
pub const STEPS: [&str; 11] = [
    PREFLIGHT,
    START_IDLE_COLOUR,
    AWAIT_MIGRATIONS,
    AWAIT_HEALTH,
    APPROVAL,
    SWITCH_TRAFFIC,
    ROLL_CRON,
    ROLL_WORKERS,
    BAKE,
    UPDATE_OLD_COLOUR,
    RECORD_VERSIONS,
];
pub const PREFLIGHT: &str = "preflight";
pub const START_IDLE_COLOUR: &str = "start idle colour";
pub const AWAIT_MIGRATIONS: &str = "await migrations";
pub const AWAIT_HEALTH: &str = "await health";
pub const APPROVAL: &str = "approval";
pub const SWITCH_TRAFFIC: &str = "switch traffic";
pub const ROLL_CRON: &str = "roll cron";
pub const ROLL_WORKERS: &str = "roll workers";
pub const BAKE: &str = "bake";
pub const UPDATE_OLD_COLOUR: &str = "update old colour";
pub const RECORD_VERSIONS: &str = "record versions";

/// Why the deploy refuses to start from what HAProxy reports.
#[derive(Debug, PartialEq, Eq)]
pub enum ColourChoiceError {
    BothLive,
    UnknownServer(String),
    MissingServer(String),
}

impl std::fmt::Display for ColourChoiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BothLive => write!(
                f,
                "both colours carry traffic in HAProxy, so neither is idle: put one in maintenance first"
            ),
            Self::UnknownServer(name) => {
                write!(
                    f,
                    "HAProxy server {name} carries traffic but is neither colour"
                )
            }
            Self::MissingServer(name) => write!(f, "HAProxy backend has no server {name}"),
        }
    }
}

/// The live colour and the one to deploy to. The first deploy (nothing live, or blue live as
/// the seed starts) goes to green; after that, to whichever colour is not live.
pub fn choose_colours(
    environment: &Environment,
    servers: &[ServerView],
) -> Result<(Option<Colour>, Colour), ColourChoiceError> {
    for name in [&environment.blue_server, &environment.green_server] {
        if !servers.iter().any(|server| &server.name == name) {
            return Err(ColourChoiceError::MissingServer(name.clone()));
        }
    }
    let mut live = None;
    // In rotation, not "up": a live colour whose checks fail right now (its database is
    // down) is still the live colour, and must not be taken for the idle one.
    for server in servers
        .iter()
        .filter(|server| server.carries_traffic || server.in_rotation)
    {
        let colour = colour_of_server(environment, &server.name)
            .ok_or_else(|| ColourChoiceError::UnknownServer(server.name.clone()))?;
        if live.is_some() {
            return Err(ColourChoiceError::BothLive);
        }
        live = Some(colour);
    }
    let target = match live {
        Some(Colour::Green) => Colour::Blue,
        _ => Colour::Green,
    };
    Ok((live, target))
}

pub fn colour_of_server(environment: &Environment, server: &str) -> Option<Colour> {
    if server == environment.blue_server {
        Some(Colour::Blue)
    } else if server == environment.green_server {
        Some(Colour::Green)
    } else {
        None
    }
}

/// The names one colour goes by in the stack.
pub struct ColourNames<'a> {
    pub container: &'a str,
    pub server: &'a str,
}

pub fn names(environment: &Environment, colour: Colour) -> ColourNames<'_> {
    match colour {
        Colour::Blue => ColourNames {
            container: &environment.blue_container,
            server: &environment.blue_server,
        },
        _ => ColourNames {
            container: &environment.green_container,
            server: &environment.green_server,
        },
    }
}

pub fn colour_name(colour: Colour) -> &'static str {
    match colour {
        Colour::Blue => "blue",
        Colour::Green => "green",
        Colour::Unspecified => "none",
    }
}

/// Where the environment's images keep their migrations: Prisma's folder in an image built
/// the usual way (`WORKDIR /app`), unless the environment says otherwise.
pub fn migrations_path(environment: &Environment) -> &str {
    match environment.migrations_path.as_str() {
        "" => "/app/prisma/migrations",
        path => path,
    }
}

/// Worker drift: the environment wants `wanted` workers, `running` run. The deploy leaves
/// `wanted` on the new version, and says so.
pub fn worker_drift(service: &str, running: u32, wanted: u32) -> Option<String> {
    (running != wanted).then(|| {
        format!(
            "{service}: {running} running, the environment wants {wanted}; the deploy leaves {wanted} on the new version"
        )
    })
}

/// A worker's Build ID in the environment's Worker Deployment: its image's version (tag).
pub fn build_id(image: &str) -> String {
    match image.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => tag.to_string(),
        _ => "latest".to_string(),
    }
}

/// The version the live colour ran before the deploy: the tag of its previous image, once
/// preflight has read it.
pub fn previous_version(status: &DeployStatus) -> Option<String> {
    status
        .previous_image
        .rsplit_once(':')
        .map(|(_, tag)| tag.to_string())
        .filter(|tag| !tag.is_empty())
}

pub fn phase_name(phase: i32) -> &'static str {
    match Phase::try_from(phase).unwrap_or_default() {
        Phase::Unspecified => "unknown",
        Phase::Running => "running",
        Phase::AwaitingApproval => "awaiting approval",
        Phase::Completed => "completed",
        Phase::Rejected => "rejected",
        Phase::Failed => "failed",
        Phase::Baking => "baking",
        Phase::RollingBack => "rolling back",
        Phase::RolledBack => "rolled back",
        Phase::Aborted => "aborted",
    }
}

/// The bake's judgement of the new colour, from HAProxy's counters at the start of the bake
/// and now: a reason to roll back, or `None` while it behaves.
pub fn bake_verdict(
    baseline: &ServerCounters,
    now: &ServerCounters,
    options: &BakeOptions,
) -> Option<String> {
    let failed_checks = now.check_failures.saturating_sub(baseline.check_failures);
    if failed_checks > 0 || now.status.starts_with("DOWN") {
        return Some(format!(
            "HAProxy's health checks of the new colour failed {failed_checks} time(s) (status {})",
            now.status
        ));
    }
    // A retried request is a bad answer HAProxy hid from the user: it counts as one.
    let retries = now.retries.saturating_sub(baseline.retries);
    let responses = now.responses.saturating_sub(baseline.responses) + retries;
    let errors = now.responses_5xx.saturating_sub(baseline.responses_5xx) + retries;
    let ratio = if responses == 0 {
        0.0
    } else {
        errors as f64 / responses as f64
    };
    (errors >= options.min_5xx.max(1) as u64 && ratio > options.max_5xx_ratio).then(|| {
        format!(
            "the new colour answered {errors} of {responses} requests with 5xx or had them \
             retried ({:.1}% > {:.1}%)",
            ratio * 100.0,
            options.max_5xx_ratio * 100.0
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment() -> Environment {
        Environment {
            blue_server: "blue".into(),
            green_server: "green".into(),
            blue_container: "ecomweb_api_blue".into(),
            green_container: "ecomweb_api_green".into(),
            ..Default::default()
        }
    }

    fn servers(blue_live: bool, green_live: bool) -> Vec<ServerView> {
        vec![
            ServerView {
                name: "blue".into(),
                carries_traffic: blue_live,
                in_maintenance: !blue_live,
                in_rotation: blue_live,
                ..Default::default()
            },
            ServerView {
                name: "green".into(),
                carries_traffic: green_live,
                in_maintenance: !green_live,
                in_rotation: green_live,
                ..Default::default()
            },
        ]
    }

    #[test]
    fn first_deploy_goes_to_green() {
        let env = environment();
        assert_eq!(
            choose_colours(&env, &servers(true, false)),
            Ok((Some(Colour::Blue), Colour::Green))
        );
        assert_eq!(
            choose_colours(&env, &servers(false, false)),
            Ok((None, Colour::Green))
        );
    }

    #[test]
    fn next_deploy_goes_to_the_colour_that_is_not_live() {
        assert_eq!(
            choose_colours(&environment(), &servers(false, true)),
            Ok((Some(Colour::Green), Colour::Blue))
        );
    }

    #[test]
    fn a_live_colour_that_is_down_is_still_the_live_colour() {
        let mut down = servers(false, false);
        down[0].in_rotation = true;
        assert_eq!(
            choose_colours(&environment(), &down),
            Ok((Some(Colour::Blue), Colour::Green))
        );
    }

    #[test]
    fn refuses_when_both_colours_are_live() {
        assert_eq!(
            choose_colours(&environment(), &servers(true, true)),
            Err(ColourChoiceError::BothLive)
        );
    }

    #[test]
    fn refuses_a_backend_without_both_colours() {
        let mut only_blue = servers(true, false);
        only_blue.pop();
        assert_eq!(
            choose_colours(&environment(), &only_blue),
            Err(ColourChoiceError::MissingServer("green".into()))
        );
        let mut stranger = servers(false, false);
        stranger.push(ServerView {
            name: "red".into(),
            carries_traffic: true,
            ..Default::default()
        });
        assert_eq!(
            choose_colours(&environment(), &stranger),
            Err(ColourChoiceError::UnknownServer("red".into()))
        );
    }

    fn counters(responses: u64, errors: u64, check_failures: u64) -> ServerCounters {
        ServerCounters {
            responses,
            responses_5xx: errors,
            retries: 0,
            check_failures,
            status: "UP".into(),
        }
    }

    #[test]
    fn the_bake_rolls_back_on_a_5xx_share_over_the_threshold() {
        let options = BakeOptions {
            seconds: 30,
            max_5xx_ratio: 0.05,
            min_5xx: 3,
        };
        let baseline = counters(1000, 50, 2);
        // Counted from the bake's start: old errors do not count.
        assert_eq!(
            bake_verdict(&baseline, &counters(1100, 52, 2), &options),
            None
        );
        // 10 of 100 is over 5%.
        let verdict = bake_verdict(&baseline, &counters(1100, 60, 2), &options).unwrap();
        assert!(verdict.contains("10 of 100"), "{verdict}");
        // Retries count as bad answers: HAProxy hid them from users, not from the bake.
        let mut retried = counters(1100, 50, 2);
        retried.retries = 20;
        assert!(bake_verdict(&baseline, &retried, &options).is_some());
        // Over the share, but fewer than min_5xx: one error on a quiet colour is no trend.
        assert_eq!(
            bake_verdict(&baseline, &counters(1004, 52, 2), &options),
            None
        );
    }

    #[test]
    fn the_bake_rolls_back_on_failed_checks_or_a_down_server() {
        let options = BakeOptions::default();
        let baseline = counters(0, 0, 0);
        assert!(bake_verdict(&baseline, &counters(10, 0, 1), &options).is_some());
        let mut down = counters(10, 0, 0);
        down.status = "DOWN 1/2".into();
        assert!(bake_verdict(&baseline, &down, &options).is_some());
        assert_eq!(bake_verdict(&baseline, &counters(10, 0, 0), &options), None);
    }

    #[test]
    fn names_follow_the_colour() {
        let env = environment();
        assert_eq!(names(&env, Colour::Green).container, "ecomweb_api_green");
        assert_eq!(names(&env, Colour::Blue).server, "blue");
    }

    #[test]
    fn runbook_order_matches_the_seed() {
        let position = |step| STEPS.iter().position(|s| *s == step).unwrap();
        assert!(position(START_IDLE_COLOUR) < position(AWAIT_MIGRATIONS));
        assert!(position(AWAIT_MIGRATIONS) < position(AWAIT_HEALTH));
        assert!(position(AWAIT_HEALTH) < position(APPROVAL));
        assert!(position(APPROVAL) < position(SWITCH_TRAFFIC));
        assert!(position(SWITCH_TRAFFIC) < position(ROLL_CRON));
        assert!(position(ROLL_CRON) < position(ROLL_WORKERS));
        assert!(position(ROLL_WORKERS) < position(BAKE));
        assert!(position(BAKE) < position(UPDATE_OLD_COLOUR));
        assert!(position(UPDATE_OLD_COLOUR) < position(RECORD_VERSIONS));
        assert_eq!(STEPS[0], PREFLIGHT);
    }

    #[test]
    fn build_ids_are_image_versions() {
        assert_eq!(build_id("ecomweb-api:v2.0.0"), "v2.0.0");
        assert_eq!(build_id("registry.local:5000/ecomweb-api:v2"), "v2");
        assert_eq!(build_id("registry.local:5000/ecomweb-api"), "latest");
        assert_eq!(build_id("ecomweb-api"), "latest");
    }

    #[test]
    fn drift_is_named_only_when_counts_differ() {
        assert_eq!(worker_drift("ecomweb_worker", 2, 2), None);
        let notice = worker_drift("ecomweb_worker", 1, 2).unwrap();
        assert!(
            notice.contains("1 running") && notice.contains("wants 2"),
            "{notice}"
        );
    }
}
