//! Asks the Compose tool for the config hash each service will have once the deploy is done,
//! so the containers the deploy creates look up to date to a later `docker compose up -d`.

use std::{collections::HashMap, path::Path, process::Command};

use anyhow::{Context, bail};

/// `config --hash '*'` with each image variable naming its image, or, where that is `None`,
/// as the env file has it now (what a rollback puts back). A missing compose file gives no
/// hashes: deploys work without Compose, they just cannot keep it in step.
pub fn config_hashes(
    file: &Path,
    variables: &[(String, Option<String>)],
) -> anyhow::Result<HashMap<String, String>> {
    if !file.exists() {
        return Ok(HashMap::new());
    }
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|output| output.status.success());
    let mut command = if plugin {
        let mut command = Command::new("docker");
        command.arg("compose");
        command
    } else {
        Command::new("docker-compose")
    };
    if let Some(directory) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        command.current_dir(directory);
    }
    let file_name = file.file_name().context("compose file name")?;
    command
        .arg("-f")
        .arg(file_name)
        .args(["config", "--hash", "*"]);
    for (variable, image) in variables {
        match image {
            Some(image) => command.env(variable, image),
            None => command.env_remove(variable),
        };
    }
    let output = command.output().context("running the compose tool")?;
    if !output.status.success() {
        bail!(
            "`compose config --hash` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(parse_hashes(&String::from_utf8_lossy(&output.stdout)))
}

/// Lines of `service hash`.
pub fn parse_hashes(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (service, hash) = line.trim().split_once(' ')?;
            Some((service.to_string(), hash.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_hash_per_service() {
        let hashes = parse_hashes("haproxy 28b2\necomweb_cron e778\n\n");
        assert_eq!(hashes.len(), 2);
        assert_eq!(hashes["ecomweb_cron"], "e778");
    }
}
