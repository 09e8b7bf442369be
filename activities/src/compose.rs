//! Docker Compose's env file: after a deploy, the image variables name what was deployed, so
//! `docker compose ps` agrees with the deploy and a later `docker compose up -d` keeps it.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// The label Compose compares with its own hash to decide whether to recreate a container.
pub const CONFIG_HASH_LABEL: &str = "com.docker.compose.config-hash";

/// Sets `variables` to `value` in env-file text: replaced in place, appended when missing,
/// every other line kept as it was.
pub fn set_variables(text: &str, variables: &[String], value: &str) -> String {
    let mut missing: Vec<&String> = variables.iter().collect();
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| {
            let name = line.split('=').next().unwrap_or("").trim();
            match missing
                .iter()
                .position(|variable| variable.as_str() == name)
            {
                Some(index) if !line.trim_start().starts_with('#') => {
                    missing.remove(index);
                    format!("{name}={value}")
                }
                _ => line.to_string(),
            }
        })
        .collect();
    lines.extend(
        missing
            .into_iter()
            .map(|variable| format!("{variable}={value}")),
    );
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// Input of `record_versions`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecordVersions {
    pub variables: Vec<String>,
    pub image: String,
}

/// The env-file activity. `env_file` is where the worker sees Compose's `.env`, if anywhere.
pub struct ComposeActivities {
    pub env_file: Option<PathBuf>,
}

#[temporalio_macros::activities]
impl ComposeActivities {
    /// Writes the deployed image into the env file, atomically. Returns the file it wrote,
    /// or an empty string when this worker has no env file to keep.
    #[activity]
    pub async fn record_versions(
        self: std::sync::Arc<Self>,
        _ctx: ActivityContext,
        input: RecordVersions,
    ) -> Result<String, ActivityError> {
        let Some(path) = &self.env_file else {
            return Ok(String::new());
        };
        let path = path.clone();
        tokio::task::spawn_blocking(move || write_variables(&path, &input))
            .await
            .map_err(|panicked| crate::failure(panicked.into()))?
            .map_err(crate::failure)
    }
}

/// Read, change, write back atomically, under a lock: two writers (deploys of two environments
/// that share the file, or a retried activity and its first attempt, still running on a
/// worker that missed its heartbeats) must not lose each other's variable.
fn write_variables(path: &std::path::Path, input: &RecordVersions) -> anyhow::Result<String> {
    let lock = std::fs::File::create(path.with_extension("deployctl-lock"))
        .with_context(|| format!("locking {}", path.display()))?;
    lock.lock()?;
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error).context(format!("reading {}", path.display())),
    };
    let updated = set_variables(&text, &input.variables, &input.image);
    let temporary = path.with_extension("deployctl-tmp");
    std::fs::write(&temporary, updated)?;
    std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_in_place_and_appends_what_is_missing() {
        let text = "# versions\nCOMPOSE_PROJECT_NAME=deployctl\nAPI_BLUE_IMAGE=ecomweb-api:v1\n#API_GREEN_IMAGE=old\n";
        let variables = vec!["API_BLUE_IMAGE".to_string(), "API_GREEN_IMAGE".to_string()];
        assert_eq!(
            set_variables(text, &variables, "ecomweb-api:v2"),
            "# versions\nCOMPOSE_PROJECT_NAME=deployctl\nAPI_BLUE_IMAGE=ecomweb-api:v2\n#API_GREEN_IMAGE=old\nAPI_GREEN_IMAGE=ecomweb-api:v2\n"
        );
    }

    /// Side by side, each writer's variable survives the others' (a lost update would
    /// drop one).
    #[test]
    fn writers_side_by_side_keep_every_variable() {
        let directory = std::env::temp_dir().join(format!("deployctl-env-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("images.env");
        std::fs::write(&path, "COMPOSE_PROJECT_NAME=deployctl\n").unwrap();
        let writers: Vec<_> = (0..8)
            .map(|writer| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for round in 0..25 {
                        let input = RecordVersions {
                            variables: vec![format!("PART_{writer}_IMAGE")],
                            image: format!("app:{round}"),
                        };
                        write_variables(&path, &input).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for writer in 0..8 {
            assert!(
                text.contains(&format!("PART_{writer}_IMAGE=app:24\n")),
                "{text}"
            );
        }
        std::fs::remove_dir_all(&directory).unwrap();
    }

    #[test]
    fn an_empty_file_gets_every_variable() {
        let variables = vec!["CRON_IMAGE".to_string()];
        assert_eq!(set_variables("", &variables, "x:v1"), "CRON_IMAGE=x:v1\n");
    }
}
