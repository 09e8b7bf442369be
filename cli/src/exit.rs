//! Exit codes: what a script can tell apart without reading the words. They are part of the
//! interface (the README lists them), so a code never changes its meaning.

use deployctl_proto::v1::{DeployStatus, Phase, StepState};
use deployctl_workflows::plan::PREFLIGHT;

/// The deploy completed (or, for `status` and commands that do not wait, is still going).
pub const DONE: u8 = 0;
/// The deploy failed after it had changed something; compensation put back the last good state.
/// For `check`: an item of the checklist failed.
pub const FAILED: u8 = 1;
/// Refused before any change: bad input, an unknown environment or image, a deploy already
/// running, an update with no gate waiting.
pub const REFUSED: u8 = 2;
pub const REJECTED: u8 = 3;
pub const ROLLED_BACK: u8 = 4;
pub const ABORTED: u8 = 5;
/// Temporal could not be reached (or stopped answering while a deploy was followed).
pub const UNREACHABLE: u8 = 6;

/// The table `--help` shows.
pub const HELP: &str = "Exit codes:
  0  done (status: done, or still running)
  1  the deploy failed (the stack is back on its last good state); check: an item failed
  2  refused before any change
  3  rejected at the approval gate
  4  rolled back
  5  aborted
  6  could not reach Temporal";

/// How a command ended: its exit code, and the document `--json` prints.
#[derive(Default, serde::Serialize)]
pub struct Ended {
    pub exit_code: u8,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_ui: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<DeployStatus>,
    /// `status`, `config` and `completions` print their own document instead.
    #[serde(skip)]
    pub document: Option<serde_json::Value>,
}

impl Ended {
    pub fn with_code(exit_code: u8, message: impl Into<String>) -> Self {
        Self {
            exit_code,
            message: message.into(),
            ..Default::default()
        }
    }
}

/// Temporal did not answer: exit code 6, not a refusal.
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "could not reach Temporal: {}", self.0)
    }
}

impl std::error::Error for Unreachable {}

/// The code for an error that ended the command.
pub fn of_error(error: &anyhow::Error) -> u8 {
    if error.chain().any(|cause| cause.is::<Unreachable>()) {
        UNREACHABLE
    } else {
        REFUSED
    }
}

/// The code for a deploy as its status shows it; a failure in preflight changed nothing.
pub fn of_status(status: &DeployStatus) -> u8 {
    match Phase::try_from(status.phase).unwrap_or_default() {
        Phase::Rejected => REJECTED,
        Phase::RolledBack => ROLLED_BACK,
        Phase::Aborted => ABORTED,
        Phase::Failed if preflight_passed(status) => FAILED,
        Phase::Failed => REFUSED,
        _ => DONE,
    }
}

pub fn preflight_passed(status: &DeployStatus) -> bool {
    status
        .steps
        .iter()
        .any(|step| step.name == PREFLIGHT && step.state == StepState::Done as i32)
}

#[cfg(test)]
mod tests {
    use deployctl_proto::v1::Step;

    use super::*;

    fn status(phase: Phase, preflight: StepState) -> DeployStatus {
        DeployStatus {
            phase: phase as i32,
            steps: vec![Step {
                name: PREFLIGHT.into(),
                state: preflight as i32,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn each_outcome_has_its_own_code() {
        let cases = [
            (Phase::Completed, StepState::Done, DONE),
            (Phase::Running, StepState::Done, DONE),
            (Phase::AwaitingApproval, StepState::Done, DONE),
            (Phase::Failed, StepState::Done, FAILED),
            (Phase::Failed, StepState::Failed, REFUSED),
            (Phase::Rejected, StepState::Done, REJECTED),
            (Phase::RolledBack, StepState::Done, ROLLED_BACK),
            (Phase::Aborted, StepState::Running, ABORTED),
        ];
        for (phase, preflight, code) in cases {
            assert_eq!(of_status(&status(phase, preflight)), code, "{phase:?}");
        }
    }

    #[test]
    fn only_an_unreachable_temporal_exits_6() {
        let lost = anyhow::Error::new(Unreachable("connection refused".into()))
            .context("following the deploy");
        assert_eq!(of_error(&lost), UNREACHABLE);
        assert_eq!(of_error(&anyhow::anyhow!("unknown environment")), REFUSED);
    }

    #[test]
    fn the_help_names_every_code() {
        for code in [
            DONE,
            FAILED,
            REFUSED,
            REJECTED,
            ROLLED_BACK,
            ABORTED,
            UNREACHABLE,
        ] {
            assert!(HELP.contains(&format!("\n  {code}  ")), "{code}");
        }
    }
}
