//! One environment's deploys, as Temporal holds them: start one, follow it to its end, send
//! it an Update, read its push queue, and run the read-only workflows (`config`, `check`) on
//! the environment's pool.

use std::time::Duration;

use anyhow::Context;
use deployctl_proto::v1::{DeployRequest, DeployStatus, Phase, PushQueue, StepState};
use deployctl_workflows::{
    CheckEnvironmentWorkflow, ChecklistWorkflow, DeployWorkflow,
    push_queue::{PushQueueWorkflow, deploy_id, queue_id},
    visibility,
};
use temporalio_client::{
    Client, WorkflowExecuteUpdateOptions, WorkflowGetResultOptions, WorkflowHandle,
    WorkflowIdConflictPolicy, WorkflowQueryOptions, WorkflowStartOptions,
    errors::{WorkflowQueryError, WorkflowStartError, WorkflowUpdateError},
};
use temporalio_common::{MemoValues, search_attributes::SearchAttributes};

use crate::{
    exit::{self, Ended},
    output, watch,
};

/// One environment's deploys, as Temporal holds them, and where their words go.
pub struct Deploys {
    pub environment: String,
    pub client: Client,
    pub handle: WorkflowHandle<Client, DeployWorkflow>,
    pub task_queue: String,
    /// The Web UI's workflow list of the namespace.
    pub web_ui: String,
    pub terminal: output::Terminal,
}

impl Deploys {
    /// How a read-only workflow (`config`, `check`) starts: under its fixed id, a second
    /// one asked for while the first runs joins it and reads its result.
    fn read_only(&self, id: String) -> WorkflowStartOptions {
        WorkflowStartOptions::new(&self.task_queue, id)
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .build()
    }

    /// Runs the worker's read-only check of the environment, and prints what it found.
    pub async fn check_environment(&self, environment: &str) -> anyhow::Result<Ended> {
        let id = format!("check-environment-{environment}");
        let options = self.read_only(id);
        let handle = self
            .client
            .start_workflow(
                CheckEnvironmentWorkflow::run,
                environment.to_string(),
                options,
            )
            .await
            .context("starting the environment check")?;
        let report = handle
            .get_result(Default::default())
            .await
            .context("waiting for the environment check")?;
        for line in &report.matches {
            self.terminal.say(format!("  ✓ {line}"));
        }
        for line in &report.problems {
            self.terminal.say(format!("  ✗ {line}"));
        }
        let message = match report.problems.len() {
            0 => format!("environment {environment} matches the running stack"),
            count => {
                format!(
                    "environment {environment}: {count} settings do not match the running stack"
                )
            }
        };
        self.terminal.say(&message);
        let exit_code = match report.problems.is_empty() {
            true => exit::DONE,
            false => exit::REFUSED,
        };
        Ok(Ended {
            document: Some(serde_json::to_value(&report)?),
            ..Ended::with_code(exit_code, message)
        })
    }

    /// Runs the monitoring checklist on a worker, and prints one line per item.
    pub async fn checklist(&self, environment: &str) -> anyhow::Result<Ended> {
        let id = format!("checklist-{environment}");
        let options = self.read_only(id);
        let handle = self
            .client
            .start_workflow(ChecklistWorkflow::run, environment.to_string(), options)
            .await
            .context("starting the checklist")?;
        let checklist = handle
            .get_result(Default::default())
            .await
            .context("waiting for the checklist")?;
        for item in &checklist.items {
            let mark = if item.passed { "✓" } else { "✗" };
            self.terminal
                .say(format!("  {mark} {:<14} {}", item.name, item.detail));
        }
        let failed: Vec<&str> = checklist
            .items
            .iter()
            .filter(|item| !item.passed)
            .map(|item| item.name.as_str())
            .collect();
        let (exit_code, message) = match failed.is_empty() {
            true => (exit::DONE, format!("{environment}: every item passed")),
            false => (
                exit::FAILED,
                format!("{environment}: failed: {}", failed.join(", ")),
            ),
        };
        self.terminal.say(&message);
        let mut document = serde_json::to_value(&checklist)?;
        document["exit_code"] = exit_code.into();
        Ok(Ended {
            document: Some(document),
            ..Ended::with_code(exit_code, message)
        })
    }

    /// The environment's push queue as its `status` query tells it, or None if no push has
    /// reached it yet.
    pub async fn push_queue(&self) -> anyhow::Result<Option<PushQueue>> {
        let handle = self
            .client
            .get_workflow_handle::<PushQueueWorkflow>(queue_id(&self.environment));
        match handle
            .query(
                PushQueueWorkflow::status,
                (),
                WorkflowQueryOptions::default(),
            )
            .await
        {
            Ok(queue) => Ok(Some(queue)),
            Err(WorkflowQueryError::NotFound(_)) => Ok(None),
            Err(other) => Err(anyhow::Error::new(other).context("querying the push queue")),
        }
    }

    /// An Update's answer, or why it was refused: its validator's words, or the deploy ended.
    pub async fn answered(
        &self,
        answer: Result<deployctl_proto::v1::Accepted, WorkflowUpdateError>,
    ) -> anyhow::Result<Ended> {
        let accepted = match answer {
            Ok(accepted) => accepted,
            Err(WorkflowUpdateError::Failed(failure)) => {
                anyhow::bail!("refused: {}", failure.message)
            }
            Err(other) => {
                // Temporal takes no Update for a workflow that has ended (it answers "not
                // found"); the status says which deploy that was, or that none has run.
                let status = query(&self.handle).await?;
                if !is_running(status.phase) {
                    anyhow::bail!(
                        "refused: the deploy of {} has ended ({}): no approval gate is waiting \
                         and nothing is baking",
                        status.version,
                        output::phase_name(status.phase)
                    );
                }
                return Err(anyhow::Error::new(other).context("sending the update"));
            }
        };
        self.terminal.say(&accepted.message);
        Ok(Ended {
            workflow_id: Some(self.handle.info().workflow_id.clone()),
            ..Ended::with_code(exit::DONE, accepted.message)
        })
    }

    pub async fn start(&self, request: DeployRequest, wait: bool) -> anyhow::Result<Ended> {
        let environment = request.environment_name.clone();
        let id = deploy_id(&environment);
        let version = request.version.clone();
        // What the Web UI shows beside the run: the environment's last deploy says what is live.
        let live = query(&self.handle)
            .await
            .ok()
            .and_then(|last| output::live_version(&last));
        // What `deployctl history` and the Web UI's list read: the search attributes (once the
        // namespace knows them) and the memo.
        let search_attributes =
            match deployctl_worker::register_search_attributes(&self.client).await {
                Ok(()) => Some(SearchAttributes::new([
                    visibility::DEPLOY_ENV.value_set(environment.clone()),
                    visibility::DEPLOY_VERSION.value_set(version.clone()),
                ])),
                Err(error) => {
                    eprintln!("note: the deploy starts without its search attributes: {error:#}");
                    None
                }
            };
        let mut memo = MemoValues::new();
        memo.insert(visibility::MEMO_REQUESTED_BY, request.requested_by.clone());
        if let Some(live) = &live {
            memo.insert(visibility::MEMO_FROM_VERSION, live.clone());
        }
        let options = WorkflowStartOptions::new(&self.task_queue, id.clone())
            .static_summary(output::summary(&environment, live.as_deref(), &version))
            .static_details(output::details(&request))
            .maybe_search_attributes(search_attributes)
            .memo(memo)
            .build();
        match self
            .client
            .start_workflow(DeployWorkflow::run, request, options)
            .await
        {
            Ok(_) => {}
            Err(WorkflowStartError::AlreadyStarted { .. }) => {
                // Asked again, not reused from above: a start racing this one may have won
                // since, and the refusal must name that deploy (fault row 11).
                let status = query(&self.handle).await.unwrap_or_default();
                let step = status
                    .steps
                    .iter()
                    .find(|s| s.state == StepState::Running as i32)
                    .map(|s| s.name.as_str())
                    .unwrap_or("starting");
                anyhow::bail!(
                    "a deploy to {} is already running: version {} ({}, step {step}), started by {} at {}. \
                     Follow it with `deployctl status`, approve or reject it at its gate, or stop it \
                     with `deployctl abort --reason ...`",
                    environment,
                    status.version,
                    output::phase_name(status.phase),
                    status.requested_by,
                    status.started_at,
                );
            }
            Err(error) => return Err(error).context("starting the deploy workflow"),
        }
        let message = format!("deploy {version} to {environment} started: workflow {id}");
        let web_ui = format!("{}/{id}", self.web_ui);
        self.terminal.say(&message);
        self.terminal.say(format!("Web UI: {web_ui}"));
        let ended = self.follow(wait, false, message).await?;
        Ok(Ended {
            web_ui: Some(web_ui),
            ..ended
        })
    }

    /// Prints each step as it changes. Without `wait`, stops once preflight has passed (or,
    /// for `already_started`, at once). Ends with the deploy's outcome and its last status.
    pub async fn follow(
        &self,
        wait: bool,
        already_started: bool,
        message: String,
    ) -> anyhow::Result<Ended> {
        let terminal = self.terminal;
        let mut screen = watch::Screen::new(terminal);
        let mut unreachable_since: Option<std::time::Instant> = None;
        // The workflow's end, long-polled beside the status polls, so the last lines print as
        // soon as the deploy ends rather than at the next poll.
        let ended = self.handle.get_result(WorkflowGetResultOptions::default());
        tokio::pin!(ended);
        let mut end_seen = false;
        loop {
            // Temporal or the worker may restart under a deploy; keep watching through it.
            let status = match query(&self.handle).await {
                Ok(status) => {
                    if unreachable_since.take().is_some() {
                        screen.say("  (reconnected)");
                    }
                    status
                }
                Err(error) => {
                    let since = *unreachable_since.get_or_insert_with(|| {
                        screen.say(format!(
                            "  (lost contact with the deploy: {error:#}; retrying)"
                        ));
                        std::time::Instant::now()
                    });
                    if since.elapsed() > Duration::from_secs(180) {
                        let lost = exit::Unreachable(format!("{error:#}"));
                        return Err(anyhow::Error::new(lost).context("no answer for 180 s"));
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            // Retries are a nicety: a describe that fails leaves them out of this look.
            let retries = match self.handle.describe(Default::default()).await {
                Ok(description) => watch::retries(description.raw()),
                Err(_) => Vec::new(),
            };
            screen.show(&status, &retries, &self.environment);
            let phase = Phase::try_from(status.phase).unwrap_or_default();
            let preflight_done = already_started || exit::preflight_passed(&status);
            let outcome = match phase {
                Phase::Failed if !preflight_done => {
                    Some(format!("refused before any change: {}", status.error))
                }
                Phase::Failed => Some(format!(
                    "the deploy failed at {}: {}",
                    status.failed_step, status.error
                )),
                Phase::Completed | Phase::Rejected | Phase::RolledBack | Phase::Aborted => {
                    let phase = output::phase_name(status.phase);
                    Some(format!("the deploy of {} {phase}", status.version))
                }
                _ if !wait && preflight_done => {
                    if !already_started {
                        screen.say("preflight passed; follow the deploy with `deployctl watch`");
                    }
                    Some(message.clone())
                }
                _ => None,
            };
            if let Some(outcome) = outcome {
                screen.finish(&outcome);
                let exit_code = match phase {
                    Phase::Failed if !preflight_done => exit::REFUSED,
                    _ => exit::of_status(&status),
                };
                if phase == Phase::Failed {
                    eprintln!("error: {outcome}");
                }
                return Ok(Ended {
                    workflow_id: Some(self.handle.info().workflow_id.clone()),
                    status: Some(status),
                    ..Ended::with_code(exit_code, outcome)
                });
            }
            if end_seen {
                tokio::time::sleep(Duration::from_millis(300)).await;
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                    _ = &mut ended => end_seen = true,
                }
            }
        }
    }
}

pub fn is_running(phase: i32) -> bool {
    matches!(
        Phase::try_from(phase).unwrap_or_default(),
        Phase::Running | Phase::AwaitingApproval | Phase::Baking | Phase::RollingBack
    )
}

/// The version the live colour ran before the last deploy.
pub fn previous_version(status: &DeployStatus) -> anyhow::Result<String> {
    deployctl_workflows::plan::previous_version(status)
        .context("the last deploy recorded no previous version: name one with --to VERSION")
}

pub fn update_options() -> WorkflowExecuteUpdateOptions {
    WorkflowExecuteUpdateOptions::default()
}

pub async fn query(
    handle: &WorkflowHandle<Client, DeployWorkflow>,
) -> anyhow::Result<DeployStatus> {
    handle
        .query(DeployWorkflow::status, (), WorkflowQueryOptions::default())
        .await
        .map_err(|error| match error {
            WorkflowQueryError::NotFound(_) => {
                anyhow::anyhow!("no deploy has run in this environment yet")
            }
            other => anyhow::Error::new(other).context("querying the deploy's status"),
        })
}
