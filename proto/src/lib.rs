//! The deploy contract shared by the CLI, the workflow and the worker.
//!
//! Types are generated from `deployctl/v1/deploy.proto` by prost; their serde impls follow the
//! proto-JSON mapping (pbjson), which is what the Temporal payload converter sends.

pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/deployctl.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/deployctl.v1.serde.rs"));
}

pub mod names;
pub mod runtime_api;

/// Where deploys run when the environment names no task queue of its own.
pub const DEFAULT_DEPLOY_TASK_QUEUE: &str = "deployctl";

impl v1::Environment {
    /// The app image of `version`, which the API colours and the cron run.
    pub fn image(&self, version: &str) -> String {
        format!("{}:{version}", self.image_repository)
    }

    /// The workers' image of `version`: the app image, unless the environment has one of its own.
    pub fn worker_image(&self, version: &str) -> String {
        match self.worker_image_repository.as_str() {
            "" => self.image(version),
            repository => format!("{repository}:{version}"),
        }
    }

    /// The task queue the environment's deploys run on.
    pub fn deploys_task_queue(&self) -> &str {
        match self.deploy_task_queue.as_str() {
            "" => DEFAULT_DEPLOY_TASK_QUEUE,
            queue => queue,
        }
    }

    /// Each Compose image variable with the image of `version` it names: the workers' variable
    /// names the workers' image, every other one the app image.
    pub fn images_by_variable(&self, version: &str) -> Vec<(String, String)> {
        self.image_variables
            .iter()
            .map(|variable| {
                let image = if *variable == self.worker_image_variable {
                    self.worker_image(version)
                } else {
                    self.image(version)
                };
                (variable.clone(), image)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::v1::Environment;

    fn shop() -> Environment {
        Environment {
            image_repository: "shop".into(),
            worker_image_repository: "shop-worker".into(),
            image_variables: vec!["SHOP_API_BLUE_IMAGE".into(), "SHOP_WORKER_IMAGE".into()],
            worker_image_variable: "SHOP_WORKER_IMAGE".into(),
            deploy_task_queue: "shop-deployctl".into(),
            ..Default::default()
        }
    }

    #[test]
    fn workers_run_their_own_image_when_the_environment_has_one() {
        assert_eq!(shop().image("v2"), "shop:v2");
        assert_eq!(shop().worker_image("v2"), "shop-worker:v2");
        let one_image = Environment {
            image_repository: "ecomweb-api".into(),
            ..Default::default()
        };
        assert_eq!(one_image.worker_image("v2"), "ecomweb-api:v2");
    }

    #[test]
    fn each_variable_names_its_part_s_image() {
        assert_eq!(
            shop().images_by_variable("v2"),
            [
                ("SHOP_API_BLUE_IMAGE".to_string(), "shop:v2".to_string()),
                (
                    "SHOP_WORKER_IMAGE".to_string(),
                    "shop-worker:v2".to_string()
                ),
            ]
        );
    }

    #[test]
    fn deploys_run_on_deployctl_unless_the_environment_names_a_queue() {
        assert_eq!(shop().deploys_task_queue(), "shop-deployctl");
        assert_eq!(Environment::default().deploys_task_queue(), "deployctl");
    }
}
