//! The app's own Temporal tasks, joined to deployctl's worker pool through one library call.
//!
//! - `ProcessOrder` stands in for the app's short workflows: it inserts an order.
//! - `LongTask` stands in for slow work: one activity that runs for the seconds it is given,
//!   heartbeating, then records that it finished in `task_runs`. Every row there is a side
//!   effect that happened, so a task done twice shows as two rows.

use std::{path::Path, sync::Arc, time::Duration};

use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

pub const TASK_QUEUE: &str = "ecomweb";

/// Side effects of the app's tasks, one row per completed piece of work.
const CREATE_TASK_RUNS: &str = "CREATE TABLE IF NOT EXISTS task_runs (
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    build_id TEXT NOT NULL,
    worker TEXT NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

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
                ActivityOptions::start_to_close_timeout(Duration::from_secs(10)),
            )
            .await?;
        Ok(id)
    }
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct LongTaskInput {
    /// What the side effect is recorded under (the tests use the workflow id).
    pub key: String,
    pub seconds: u64,
}

#[workflow]
#[derive(Default)]
pub struct LongTask;

#[workflow_methods]
impl LongTask {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: LongTaskInput) -> WorkflowResult<()> {
        ctx.execute_activity(
            OrderActivities::long_work,
            input.clone(),
            ActivityOptions::with_start_to_close_timeout(Duration::from_secs(input.seconds + 60))
                .heartbeat_timeout(Duration::from_secs(5))
                .build(),
        )
        .await?;
        Ok(())
    }
}

pub struct OrderActivities {
    pool: sqlx::PgPool,
}

#[activities]
impl OrderActivities {
    #[activity]
    pub async fn insert_order(
        self: Arc<Self>,
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

    /// Works for `seconds`, heartbeating each one, then records the side effect.
    #[activity]
    pub async fn long_work(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: LongTaskInput,
    ) -> Result<(), ActivityError> {
        for second in 0..input.seconds {
            if ctx.is_cancelled() {
                return Err(ActivityError::cancelled());
            }
            let _ = ctx.record_heartbeat(second).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        sqlx::query(
            "INSERT INTO task_runs (key, kind, attempt, build_id, worker) VALUES ($1, 'long', $2, $3, $4)",
        )
        .bind(&input.key)
        .bind(ctx.info().attempt as i32)
        .bind(crate::version())
        .bind(crate::container_id())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Joins the pool with the app's task queue; the pool adds the deploys.
pub async fn run(
    pool_args: deployctl_worker::PoolArgs,
    task_queue: String,
    ready_file: &Path,
) -> anyhow::Result<()> {
    let pool = crate::wait_for_database().await?;
    sqlx::query(CREATE_TASK_RUNS).execute(&pool).await?;
    let mut options = WorkerOptions::new(task_queue).build();
    options.register_workflow::<ProcessOrder>()?;
    options.register_workflow::<LongTask>()?;
    options.register_activities(OrderActivities { pool });
    deployctl_worker::join_pool(pool_args, vec![options], Some(ready_file.to_path_buf())).await
}
