//! The app's own Temporal tasks, joined to deployctl's worker through one library call.
//! `ProcessOrder` stands in for the app's real workflows: it inserts an order.

use std::path::Path;

use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

pub const TASK_QUEUE: &str = "ecomweb";

#[workflow]
#[derive(Default)]
pub struct ProcessOrder;

#[workflow_methods]
impl ProcessOrder {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, customer: String) -> WorkflowResult<i64> {
        let id = ctx
            .execute_activity(
                OrderActivities::insert_order,
                customer,
                ActivityOptions::start_to_close_timeout(std::time::Duration::from_secs(10)),
            )
            .await?;
        Ok(id)
    }
}

pub struct OrderActivities {
    pool: sqlx::PgPool,
}

#[activities]
impl OrderActivities {
    #[activity]
    pub async fn insert_order(
        self: std::sync::Arc<Self>,
        _ctx: ActivityContext,
        customer: String,
    ) -> Result<i64, ActivityError> {
        let id = sqlx::query_scalar(
            "INSERT INTO orders (customer, total_cents) VALUES ($1, 100) RETURNING id",
        )
        .bind(customer)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }
}

pub async fn run(
    temporal: deployctl_worker::TemporalArgs,
    task_queue: String,
    ready_file: &Path,
) -> anyhow::Result<()> {
    let pool = crate::wait_for_database().await?;
    let client = deployctl_worker::connect(&temporal, std::time::Duration::from_secs(120)).await?;
    let mut options = WorkerOptions::new(task_queue).build();
    options.register_workflow::<ProcessOrder>()?;
    options.register_activities(OrderActivities { pool });
    deployctl_worker::run(client, options, Some(ready_file.to_path_buf())).await
}
