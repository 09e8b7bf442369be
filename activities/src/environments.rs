//! Environments: where a deploy may land, and the only source of the names it touches.
//!
//! The worker holds the Docker socket and HAProxy's admin API, so it does not take container,
//! backend or variable names from whoever starts a deploy. A request names its environment;
//! the worker looks it up here, in the embedded `environments.toml` plus the file that
//! `DEPLOYCTL_ENVIRONMENTS` names (read again for each deploy), and every name in it is checked against its grammar.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, bail};
use deployctl_proto::v1::Environment;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

const EMBEDDED: &str = include_str!("environments.toml");

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    environments: BTreeMap<String, Environment>,
}

/// Every known environment, by name: the embedded ones, then the file's, each one checked.
pub fn load(file: Option<&Path>) -> anyhow::Result<BTreeMap<String, Environment>> {
    let mut known = toml::from_str::<File>(EMBEDDED)
        .context("the embedded environments.toml")?
        .environments;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading environments from {}", path.display()))?;
        let extra = toml::from_str::<File>(&text)
            .with_context(|| format!("parsing environments in {}", path.display()))?;
        known.extend(extra.environments);
    }
    for (name, environment) in known.iter_mut() {
        environment.name = name.clone();
        deployctl_proto::names::environment(environment)
            .with_context(|| format!("environment {name:?}"))?;
    }
    Ok(known)
}

/// The environment called `name`, or an error that lists the known ones.
pub fn find(known: &BTreeMap<String, Environment>, name: &str) -> anyhow::Result<Environment> {
    deployctl_proto::names::container("environment name", name)?;
    match known.get(name) {
        Some(environment) => Ok(environment.clone()),
        None => bail!(
            "unknown environment {name:?}; this worker knows: {}",
            known.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The activity that hands the workflow its environment. The file is read again on each
/// deploy, so an edited environment needs no worker restart.
pub struct EnvironmentActivities {
    pub file: Option<PathBuf>,
}

#[temporalio_macros::activities]
impl EnvironmentActivities {
    /// The named environment, as this worker's configuration defines it. An unknown or
    /// malformed name fails for good: no retry can make it known.
    #[activity]
    pub async fn resolve_environment(
        self: Arc<Self>,
        _ctx: ActivityContext,
        name: String,
    ) -> Result<Environment, ActivityError> {
        load(self.file.as_deref())
            .and_then(|known| find(&known, &name))
            .map_err(|error| crate::failure(crate::Permanent::Refused(format!("{error:#}")).into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_local_environment_names_the_seed_containers() {
        let local = find(&load(None).unwrap(), "local").unwrap();
        assert_eq!(local.name, "local");
        assert_eq!(local.blue_container, "ecomweb_api_blue");
        assert_eq!(local.green_container, "ecomweb_api_green");
        assert_eq!(local.cron_container, "ecomweb_cron");
        assert_eq!(local.api_port, 3001);
    }

    #[test]
    fn unknown_environment_lists_the_known_ones() {
        let error = find(&load(None).unwrap(), "prod").unwrap_err().to_string();
        assert!(error.contains("unknown environment \"prod\""), "{error}");
        assert!(error.contains("local"), "{error}");
    }

    #[test]
    fn a_malformed_environment_name_is_refused_with_a_bounded_message() {
        let hostile = format!("local;{}", "x".repeat(10_000));
        let error = find(&load(None).unwrap(), &hostile)
            .unwrap_err()
            .to_string();
        assert!(error.contains("malformed environment name"), "{error}");
        assert!(error.len() < 300, "{} bytes", error.len());
    }

    /// Loads environment `name` from a config file holding one complete environment.
    fn load_one(name: &str, green_server: &str, extra: &str) -> anyhow::Result<Environment> {
        let path =
            std::env::temp_dir().join(format!("deployctl-{name}-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            format!(
                "[environments.{name}]\nimage_repository = \"shop\"\nblue_container = \"b\"\n\
                 green_container = \"g\"\nhaproxy_backend = \"api\"\nblue_server = \"blue\"\n\
                 green_server = {green_server:?}\n{extra}"
            ),
        )
        .unwrap();
        let loaded = load(Some(&path)).and_then(|known| find(&known, name));
        std::fs::remove_file(&path).unwrap();
        loaded
    }

    #[test]
    fn config_file_adds_environments() {
        let staging = load_one("staging", "green", "api_port = 8080\n").unwrap();
        assert_eq!(staging.image_repository, "shop");
        assert_eq!(staging.api_port, 8080);
        assert_eq!(staging.name, "staging");
    }

    #[test]
    fn a_config_with_a_crafted_name_is_refused_before_anything_starts() {
        let error = load_one("evil", "green;disable server api/blue", "").unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("malformed HAProxy server"), "{text}");
    }
}
