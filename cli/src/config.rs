//! The environments `deployctl` knows: the worker's embedded list plus `--config FILE`.
//!
//! The worker's own list decides what a deploy touches; a request carries only the name. The
//! CLI reads the same list to refuse an unknown name before anything starts, and to ask Compose
//! for the config hashes of the environment's image variables.

use std::path::Path;

use deployctl_proto::v1::Environment;

pub fn environment(file: Option<&Path>, name: &str) -> anyhow::Result<Environment> {
    let known = deployctl_activities::environments::load(file)?;
    deployctl_activities::environments::find(&known, name)
}

/// A version is a Docker tag; the workflow checks it again, whoever starts the deploy.
pub fn check_version(version: &str) -> anyhow::Result<()> {
    Ok(deployctl_proto::names::version(version)?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
