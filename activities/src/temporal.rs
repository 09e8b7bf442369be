//! Temporal itself as a real part: the environment's Worker Deployment.
//!
//! The worker roll hands work from one version of the pool to the next in Temporal's own
//! terms: the new version must poll every task queue before it becomes Current, and the old
//! one is stopped only once Temporal reports it Drained (no open Pinned workflow left on it).
//! Every call here reads first and changes only what is still different, so a retry on another
//! worker, after the one running the roll was killed, resumes where it left off.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use temporalio_client::{Client, NamespacedClient, WorkflowListOptions, grpc::WorkflowService};
use temporalio_common::protos::temporal::api::{
    common::v1::WorkflowExecution,
    deployment::v1::{
        WorkerDeploymentInfo, WorkerDeploymentVersion as VersionProto, WorkerDeploymentVersionInfo,
    },
    enums::v1::{
        TaskQueueKind, TaskQueueType, VersionDrainageStatus, WorkerDeploymentVersionStatus,
        WorkflowExecutionStatus,
    },
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        DescribeTaskQueueRequest, DescribeWorkerDeploymentRequest,
        DescribeWorkerDeploymentVersionRequest, DescribeWorkflowExecutionRequest,
        SetWorkerDeploymentCurrentVersionRequest, SetWorkerDeploymentRampingVersionRequest,
    },
};
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::{Heartbeat, Permanent, failure, poll_until};

/// One version of a Worker Deployment: the environment's deployment and a Build ID (the image
/// version).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct VersionRef {
    pub deployment_name: String,
    pub build_id: String,
}

impl VersionRef {
    /// As the `TemporalWorkerDeploymentVersion` search attribute and the CLI spell it.
    pub fn spelled(&self) -> String {
        format!("{}:{}", self.deployment_name, self.build_id)
    }

    fn proto(&self) -> VersionProto {
        VersionProto {
            deployment_name: self.deployment_name.clone(),
            build_id: self.build_id.clone(),
        }
    }
}

impl std::fmt::Display for VersionRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spelled())
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AwaitPolling {
    pub version: VersionRef,
    pub task_queues: Vec<String>,
    pub timeout_seconds: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SetRamping {
    pub version: VersionRef,
    pub percentage: f32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AwaitDrained {
    pub version: VersionRef,
    pub timeout_seconds: u64,
}

/// The deployment's routing as Temporal has it now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routing {
    pub current: Option<String>,
    pub ramping: Option<(String, u32)>,
    pub conflict_token: Vec<u8>,
}

/// Reads the deployment's routing; `None` when no worker has joined it yet.
pub async fn routing(client: &Client, deployment_name: &str) -> anyhow::Result<Option<Routing>> {
    let request = DescribeWorkerDeploymentRequest {
        namespace: client.namespace(),
        deployment_name: deployment_name.to_string(),
    };
    let response = match client
        .clone()
        .describe_worker_deployment(tonic::Request::new(request))
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == tonic::Code::NotFound => return Ok(None),
        Err(status) => anyhow::bail!("describing Worker Deployment {deployment_name}: {status}"),
    };
    let routing = response
        .worker_deployment_info
        .as_ref()
        .and_then(|info: &WorkerDeploymentInfo| info.routing_config.clone())
        .unwrap_or_default();
    let build = |version: Option<VersionProto>| {
        version
            .map(|v| v.build_id)
            .filter(|build_id| !build_id.is_empty())
    };
    Ok(Some(Routing {
        current: build(routing.current_deployment_version),
        ramping: build(routing.ramping_deployment_version)
            .map(|build_id| (build_id, routing.ramping_version_percentage.round() as u32)),
        conflict_token: response.conflict_token,
    }))
}

/// Makes `version` Current unless it already is. Returns the version that was Current before.
pub async fn set_current(client: &Client, version: &VersionRef) -> anyhow::Result<Option<String>> {
    let routing = routing(client, &version.deployment_name)
        .await?
        .unwrap_or_default();
    if routing.current.as_deref() == Some(version.build_id.as_str()) {
        return Ok(routing.current);
    }
    let request = SetWorkerDeploymentCurrentVersionRequest {
        namespace: client.namespace(),
        deployment_name: version.deployment_name.clone(),
        build_id: version.build_id.clone(),
        conflict_token: routing.conflict_token,
        identity: crate::identity(),
        ..Default::default()
    };
    client
        .clone()
        .set_worker_deployment_current_version(tonic::Request::new(request))
        .await
        .map_err(|status| anyhow::anyhow!("making {version} Current: {status}"))?;
    Ok(routing.current)
}

/// A fresh environment's deployment has no Current version, and a versioned worker gets no
/// task until one is set: the first worker to poll makes its own version Current. Any later
/// change of Current is the deploy's alone.
pub async fn adopt_if_no_current(client: &Client, version: &VersionRef) -> anyhow::Result<bool> {
    match routing(client, &version.deployment_name).await? {
        Some(Routing {
            current: Some(_), ..
        }) => Ok(false),
        // The deployment exists once this worker's pollers have reached the server.
        None => anyhow::bail!(
            "Worker Deployment {} not registered yet",
            version.deployment_name
        ),
        Some(_) => set_current(client, version).await.map(|_| true),
    }
}

/// Temporal's description of one version; `None` when it never saw that version (an
/// unversioned pool before this deploy, or a version not polled yet).
async fn describe_version(
    client: &Client,
    version: &VersionRef,
) -> anyhow::Result<Option<WorkerDeploymentVersionInfo>> {
    let request = DescribeWorkerDeploymentVersionRequest {
        namespace: client.namespace(),
        deployment_version: Some(version.proto()),
        ..Default::default()
    };
    match client
        .clone()
        .describe_worker_deployment_version(tonic::Request::new(request))
        .await
    {
        Ok(response) => Ok(response.into_inner().worker_deployment_version_info),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => anyhow::bail!("describing {version}: {status}"),
    }
}

/// Which task queues `version` polls, as Temporal records them.
async fn polled_queues(client: &Client, version: &VersionRef) -> anyhow::Result<Vec<String>> {
    Ok(describe_version(client, version)
        .await?
        .map(|info| info.task_queue_infos.into_iter().map(|q| q.name).collect())
        .unwrap_or_default())
}

/// Where a version stands: Drained, or still held by these open workflows.
async fn drainage(client: &Client, version: &VersionRef) -> anyhow::Result<Option<String>> {
    // A version Temporal never saw holds nothing.
    let info = describe_version(client, version).await?;
    let Some(info) = info else { return Ok(None) };
    let status = info.status();
    let drained = info
        .drainage_info
        .as_ref()
        .is_some_and(|d| d.status() == VersionDrainageStatus::Drained);
    match status {
        WorkerDeploymentVersionStatus::Drained | WorkerDeploymentVersionStatus::Inactive => {
            Ok(None)
        }
        WorkerDeploymentVersionStatus::Draining if drained => Ok(None),
        WorkerDeploymentVersionStatus::Current | WorkerDeploymentVersionStatus::Ramping => {
            Err(Permanent::Refused(format!(
                "{version} is still {}: make the new version Current first",
                status.as_str_name()
            ))
            .into())
        }
        _ => {
            let holders = holders(client, version).await?;
            Ok(Some(if holders.is_empty() {
                format!(
                    "{} (no open Pinned workflow left; Temporal has not counted it yet)",
                    status.as_str_name()
                )
            } else {
                format!(
                    "{}: {} open workflow(s) pinned to it, e.g. {}",
                    status.as_str_name(),
                    holders.len(),
                    holders
                        .iter()
                        .take(5)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }))
        }
    }
}

/// The open workflows that still hold `version`, from visibility (first 100).
async fn holders(client: &Client, version: &VersionRef) -> anyhow::Result<Vec<String>> {
    use futures::StreamExt;
    let query = format!(
        "TemporalWorkerDeploymentVersion = '{}' AND ExecutionStatus = 'Running'",
        version.spelled()
    );
    let mut stream =
        client.list_workflows(query, WorkflowListOptions::builder().limit(100).build());
    let mut ids = Vec::new();
    while let Some(execution) = stream.next().await {
        ids.push(execution?.id().to_string());
    }
    Ok(ids)
}

/// A worker polling a task queue, as Temporal last saw it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Poller {
    /// `pid@hostname`.
    pub identity: String,
    /// Seconds since its last poll arrived (a long poll waits up to a minute on an idle queue).
    pub seconds_since_poll: f64,
}

/// The workers polling `task_queue` for workflow tasks, as Temporal reports them.
async fn pollers(client: &Client, task_queue: &str) -> anyhow::Result<Vec<Poller>> {
    let request = DescribeTaskQueueRequest {
        namespace: client.namespace().to_string(),
        task_queue: Some(TaskQueue {
            name: task_queue.to_string(),
            kind: TaskQueueKind::Normal as i32,
            ..Default::default()
        }),
        task_queue_type: TaskQueueType::Workflow as i32,
        ..Default::default()
    };
    let response = client
        .clone()
        .describe_task_queue(tonic::Request::new(request))
        .await
        .with_context(|| format!("describing task queue {task_queue}"))?
        .into_inner();
    let now = std::time::SystemTime::now();
    Ok(response
        .pollers
        .into_iter()
        .map(|poller| Poller {
            identity: poller.identity,
            seconds_since_poll: poller
                .last_access_time
                .and_then(|at| {
                    let at = std::time::UNIX_EPOCH
                        + Duration::new(at.seconds.max(0) as u64, at.nanos.max(0) as u32);
                    now.duration_since(at).ok()
                })
                .map(|since| since.as_secs_f64())
                .unwrap_or(f64::MAX),
        })
        .collect())
}

/// Whether the latest run of `workflow_id` is open; false when none ever ran.
async fn running(client: &Client, workflow_id: &str) -> anyhow::Result<bool> {
    let request = DescribeWorkflowExecutionRequest {
        namespace: client.namespace().to_string(),
        execution: Some(WorkflowExecution {
            workflow_id: workflow_id.to_string(),
            run_id: String::new(),
        }),
    };
    match client
        .clone()
        .describe_workflow_execution(tonic::Request::new(request))
        .await
    {
        Ok(answer) => Ok(answer
            .into_inner()
            .workflow_execution_info
            .is_some_and(|info| info.status == WorkflowExecutionStatus::Running as i32)),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(false),
        Err(status) => Err(anyhow::anyhow!("describing {workflow_id}: {status}")),
    }
}

/// The Worker Deployment activities, and the reads of Temporal the other workflows make.
pub struct TemporalActivities {
    pub client: Client,
}

#[temporalio_macros::activities]
impl TemporalActivities {
    /// The workers polling `task_queue`, as Temporal last saw them (`deployctl check`).
    #[activity]
    pub async fn read_pollers(
        self: Arc<Self>,
        _ctx: ActivityContext,
        task_queue: String,
    ) -> Result<Vec<Poller>, ActivityError> {
        pollers(&self.client, &task_queue).await.map_err(failure)
    }

    /// Waits until no run of `workflow_id` is open (or none ever ran): true. False after
    /// 50 minutes with it still running, so that the caller decides whether to wait on.
    #[activity]
    pub async fn await_workflow_ended(
        self: Arc<Self>,
        ctx: ActivityContext,
        workflow_id: String,
    ) -> Result<bool, ActivityError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3000);
        loop {
            if ctx.is_cancelled() {
                return Err(ActivityError::cancelled());
            }
            match running(&self.client, &workflow_id).await {
                Ok(false) => return Ok(true),
                Ok(true) if tokio::time::Instant::now() >= deadline => return Ok(false),
                Ok(true) => ctx.beat(format!("{workflow_id} is running")).await,
                Err(error) => ctx.beat(format!("{workflow_id}: {error:#}")).await,
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Waits until Temporal reports the version polling every one of `task_queues`.
    #[activity]
    pub async fn await_version_polling(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AwaitPolling,
    ) -> Result<(), ActivityError> {
        let what = format!("{} polling {}", input.version, input.task_queues.join(", "));
        poll_until(
            &ctx,
            &what,
            Duration::from_secs(input.timeout_seconds),
            || async {
                let polled = polled_queues(&self.client, &input.version).await?;
                let missing: Vec<_> = input
                    .task_queues
                    .iter()
                    .filter(|queue| !polled.contains(queue))
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    Ok(Some(()))
                } else {
                    anyhow::bail!("not yet polling {}", missing.join(", "))
                }
            },
        )
        .await
    }

    /// Sends `percentage` of new workflows to the version (Ramping).
    #[activity]
    pub async fn set_ramping_version(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: SetRamping,
    ) -> Result<(), ActivityError> {
        let routing = routing(&self.client, &input.version.deployment_name)
            .await
            .map_err(failure)?
            .unwrap_or_default();
        let wanted = (
            input.version.build_id.clone(),
            input.percentage.round() as u32,
        );
        if routing.ramping.as_ref() == Some(&wanted) {
            return Ok(());
        }
        let request = SetWorkerDeploymentRampingVersionRequest {
            namespace: self.client.namespace(),
            deployment_name: input.version.deployment_name.clone(),
            build_id: input.version.build_id.clone(),
            percentage: input.percentage,
            conflict_token: routing.conflict_token,
            identity: crate::identity(),
            ..Default::default()
        };
        self.client
            .clone()
            .set_worker_deployment_ramping_version(tonic::Request::new(request))
            .await
            .map_err(|status| {
                failure(anyhow::anyhow!(
                    "ramping {} to {}%: {status}",
                    input.version,
                    input.percentage
                ))
            })?;
        Ok(())
    }

    /// Makes the version Current; returns the Build ID that was Current before, if any.
    #[activity]
    pub async fn set_current_version(
        self: Arc<Self>,
        _ctx: ActivityContext,
        version: VersionRef,
    ) -> Result<Option<String>, ActivityError> {
        set_current(&self.client, &version).await.map_err(failure)
    }

    /// Waits until Temporal reports the version Drained: no open Pinned workflow left on it.
    /// At the deadline it fails for good and names the workflows that still hold it.
    #[activity]
    pub async fn await_drained(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AwaitDrained,
    ) -> Result<(), ActivityError> {
        let started = tokio::time::Instant::now();
        let deadline = started + Duration::from_secs(input.timeout_seconds);
        loop {
            if ctx.is_cancelled() {
                return Err(ActivityError::cancelled());
            }
            match drainage(&self.client, &input.version).await {
                Ok(None) => return Ok(()),
                Ok(Some(holding)) if tokio::time::Instant::now() >= deadline => {
                    return Err(failure(
                        Permanent::Refused(format!(
                            "{} not drained after {} s: {holding}. Its workers keep running; \
                             finish or terminate those workflows, or deploy again with a longer \
                             --drain-timeout",
                            input.version, input.timeout_seconds
                        ))
                        .into(),
                    ));
                }
                Ok(Some(holding)) => ctx.beat(format!("{}: {holding}", input.version)).await,
                Err(error) if error.is::<Permanent>() => return Err(failure(error)),
                Err(error) => ctx.beat(format!("{}: {error:#}", input.version)).await,
            }
            tokio::time::sleep(crate::poll_interval(started.elapsed())).await;
        }
    }
}
