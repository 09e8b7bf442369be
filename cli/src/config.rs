//! Environments: where a deploy lands. Embedded defaults, plus an optional TOML file.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, bail};
use deployctl_proto::v1::Environment;

const EMBEDDED: &str = include_str!("environments.toml");

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    environments: BTreeMap<String, Environment>,
}

/// Every known environment, by name: the embedded ones, then the file's.
pub fn environments(file: Option<&Path>) -> anyhow::Result<BTreeMap<String, Environment>> {
    let mut known = toml::from_str::<File>(EMBEDDED)
        .context("the embedded environments.toml")?
        .environments;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let extra = toml::from_str::<File>(&text)
            .with_context(|| format!("parsing config {}", path.display()))?;
        known.extend(extra.environments);
    }
    for (name, environment) in known.iter_mut() {
        environment.name = name.clone();
        deployctl_proto::names::environment(environment)
            .with_context(|| format!("environment {name:?}"))?;
    }
    Ok(known)
}

pub fn environment(file: Option<&Path>, name: &str) -> anyhow::Result<Environment> {
    let mut known = environments(file)?;
    match known.remove(name) {
        Some(environment) => Ok(environment),
        None => bail!(
            "unknown environment {name:?}; known: {}",
            known.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A version is a Docker tag; the workflow checks it again, whoever starts the deploy.
pub fn check_version(version: &str) -> anyhow::Result<()> {
    Ok(deployctl_proto::names::version(version)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_local_environment_names_the_seed_containers() {
        let local = environment(None, "local").unwrap();
        assert_eq!(local.name, "local");
        assert_eq!(local.blue_container, "ecomweb_api_blue");
        assert_eq!(local.green_container, "ecomweb_api_green");
        assert_eq!(local.cron_container, "ecomweb_cron");
        assert_eq!(local.api_port, 3001);
    }

    #[test]
    fn unknown_environment_lists_the_known_ones() {
        let error = environment(None, "prod").unwrap_err().to_string();
        assert!(error.contains("unknown environment \"prod\""), "{error}");
        assert!(error.contains("local"), "{error}");
    }

    #[test]
    fn versions_must_be_docker_tags() {
        for good in ["v2", "v2.0.0", "2024-11-24_1", "latest"] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-v2",
            ".v2",
            "v2:latest",
            "v 2",
            "ümlaut",
            &"x".repeat(129),
        ] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
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
        let loaded = environment(Some(&path), name);
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
