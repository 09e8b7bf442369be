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
        let write = async {
            let text = match tokio::fs::read_to_string(path).await {
                Ok(text) => text,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(error) => return Err(error).context(format!("reading {}", path.display())),
            };
            let updated = set_variables(&text, &input.variables, &input.image);
            let temporary = path.with_extension("deployctl-tmp");
            tokio::fs::write(&temporary, updated).await?;
            tokio::fs::rename(&temporary, path)
                .await
                .with_context(|| format!("writing {}", path.display()))
        };
        write.await.map_err(crate::failure)?;
        Ok(path.display().to_string())
    }
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

    #[test]
    fn an_empty_file_gets_every_variable() {
        let variables = vec!["CRON_IMAGE".to_string()];
        assert_eq!(set_variables("", &variables, "x:v1"), "CRON_IMAGE=x:v1\n");
    }
}
