//! `deployctl watch`: a deploy's live progress, as a person at a terminal wants it.
//!
//! Each look at the deploy becomes a frame (`frame`, a pure function of the status, the
//! retries Temporal reports and the time): one line per step with its elapsed time, the
//! retries of the running activities with their attempt and last error, and at a gate the
//! exact commands that answer it. On a terminal the frame is redrawn in place (indicatif);
//! piped, each change prints once as a plain line, so a log reads top to bottom.

use std::io::IsTerminal;

use chrono::{DateTime, Utc};
use deployctl_proto::v1::{DeployStatus, StepState};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeWorkflowExecutionResponse;

use crate::output::{self, Terminal, mark, phase_name};

/// An activity Temporal is retrying: the attempt it is on and why the last one failed.
#[derive(Clone, Debug, PartialEq)]
pub struct Retry {
    pub activity: String,
    pub attempt: i32,
    pub last_error: String,
    /// When the next attempt starts, if it waits for one.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The retries among a run's pending activities (those past their first attempt).
pub fn retries(description: &DescribeWorkflowExecutionResponse) -> Vec<Retry> {
    description
        .pending_activities
        .iter()
        .filter(|pending| pending.attempt > 1)
        .map(|pending| Retry {
            activity: pending
                .activity_type
                .as_ref()
                .map(|kind| kind.name.clone())
                .unwrap_or_default(),
            attempt: pending.attempt,
            last_error: pending
                .last_failure
                .as_ref()
                .map(|failure| failure.message.clone())
                .unwrap_or_default(),
            next_attempt_at: pending
                .next_attempt_schedule_time
                .as_ref()
                .and_then(|at| DateTime::from_timestamp(at.seconds, at.nanos.max(0) as u32)),
        })
        .collect()
}

fn parse(timestamp: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(timestamp)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// "4.2s", "3m 05s", "1h 02m": short enough for a step's line.
fn span(seconds: f64) -> String {
    let seconds = seconds.max(0.0);
    match seconds as u64 {
        0..60 => format!("{seconds:.1}s"),
        60..3600 => format!("{}m {:02}s", seconds as u64 / 60, seconds as u64 % 60),
        whole => format!("{}h {:02}m", whole / 3600, whole % 3600 / 60),
    }
}

fn between(from: &str, to: Option<&str>, now: DateTime<Utc>) -> Option<String> {
    let from = parse(from)?;
    let to = to.and_then(parse).unwrap_or(now);
    Some(span((to - from).num_milliseconds() as f64 / 1000.0))
}

/// The lines a look at the deploy shows at `now`. `environment` names the `--env` the
/// gate's commands must carry.
pub fn frame(
    status: &DeployStatus,
    retries: &[Retry],
    environment: &str,
    now: DateTime<Utc>,
) -> Vec<String> {
    let took = between(&status.started_at, None, now).unwrap_or_default();
    let mut lines = vec![format!(
        "deploy {} to {}: {} ({took})",
        status.version,
        environment,
        phase_name(status.phase)
    )];
    for step in &status.steps {
        let finished = (!step.finished_at.is_empty()).then_some(step.finished_at.as_str());
        let elapsed = between(&step.started_at, finished, now).unwrap_or_default();
        let line = format!(
            "  {} {:<18} {elapsed:>8}  {}",
            mark(step.state),
            step.name,
            step.detail
        );
        lines.push(line.trim_end().to_string());
        if step.state == StepState::Running as i32 {
            lines.extend(retries.iter().map(|retry| retry_line(retry, now)));
        }
    }
    if let Some(gate) = status
        .gate
        .as_ref()
        .filter(|_| status.approval.is_none() && status.rejection.is_none())
    {
        let waited = between(&gate.waiting_since, None, now).unwrap_or_default();
        let deadline = match parse(&gate.deadline) {
            Some(at) => format!(
                "; deadline {} (in {})",
                at.format("%H:%M:%S UTC"),
                span((at - now).num_milliseconds() as f64 / 1000.0)
            ),
            None => "; no deadline".into(),
        };
        lines.push(format!("  ⏸ waiting for approval for {waited}{deadline}"));
        lines.push(format!(
            "      approve: deployctl --env {environment} approve --comment \"...\""
        ));
        lines.push(format!(
            "      reject:  deployctl --env {environment} reject --reason \"...\""
        ));
    }
    if !status.bake_until.is_empty() {
        lines.push(format!(
            "  ⏳ baking until {}: `deployctl --env {environment} rollback` returns traffic at once",
            status.bake_until
        ));
    }
    lines
}

fn retry_line(retry: &Retry, now: DateTime<Utc>) -> String {
    let next = match retry.next_attempt_at {
        Some(at) if at > now => format!(
            ", next in {}",
            span((at - now).num_milliseconds() as f64 / 1000.0)
        ),
        _ => String::new(),
    };
    format!(
        "      ↻ {} attempt {}{next}: {}",
        retry.activity, retry.attempt, retry.last_error
    )
}

/// Where the frames go: redrawn in place on a terminal, or printed as plain lines.
pub enum Screen {
    Live {
        bars: MultiProgress,
        lines: Vec<ProgressBar>,
    },
    Lines {
        terminal: Terminal,
        printed: Box<DeployStatus>,
        retries: Vec<(String, i32)>,
    },
}

impl Screen {
    /// Live on a terminal, unless `--json` keeps stdout for one document.
    pub fn new(terminal: Terminal) -> Self {
        if !terminal.json && std::io::stdout().is_terminal() {
            Screen::Live {
                bars: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                lines: Vec::new(),
            }
        } else {
            Screen::Lines {
                terminal,
                printed: Box::default(),
                retries: Vec::new(),
            }
        }
    }

    /// Shows the deploy as it is now.
    pub fn show(&mut self, status: &DeployStatus, retries: &[Retry], environment: &str) {
        match self {
            Screen::Live { bars, lines } => {
                let frame = frame(status, retries, environment, Utc::now());
                while lines.len() < frame.len() {
                    let line = bars.add(ProgressBar::new_spinner());
                    line.set_style(
                        ProgressStyle::with_template("{msg}").expect("a valid template"),
                    );
                    lines.push(line);
                }
                for (index, line) in lines.iter().enumerate() {
                    line.set_message(frame.get(index).cloned().unwrap_or_default());
                }
            }
            Screen::Lines {
                terminal,
                printed,
                retries: seen,
            } => {
                for line in output::changes(printed, status) {
                    terminal.say(line);
                }
                **printed = status.clone();
                for retry in retries {
                    let key = (retry.activity.clone(), retry.attempt);
                    if !seen.contains(&key) {
                        terminal.say(retry_line(retry, Utc::now()));
                        seen.push(key);
                    }
                }
            }
        }
    }

    /// A line of its own, above the frame (a lost connection, the outcome).
    pub fn say(&self, line: impl std::fmt::Display) {
        match self {
            Screen::Live { bars, .. } => {
                let _ = bars.println(line.to_string());
            }
            Screen::Lines { terminal, .. } => terminal.say(line),
        }
    }

    /// Leaves the last frame on the screen, with the outcome under it (piped, the changes
    /// have said it already).
    pub fn finish(&self, outcome: &str) {
        if let Screen::Live { lines, .. } = self {
            for line in lines {
                line.finish();
            }
            println!("{outcome}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deployctl_proto::v1::{Gate, Phase, Step};

    fn at(time: &str) -> DateTime<Utc> {
        parse(&format!("2026-12-06T{time}Z")).unwrap()
    }

    fn step(name: &str, state: StepState, started: &str, finished: &str) -> Step {
        let time = |t: &str| match t {
            "" => String::new(),
            t => format!("2026-12-06T{t}Z"),
        };
        Step {
            name: name.into(),
            state: state as i32,
            started_at: time(started),
            finished_at: time(finished),
            detail: String::new(),
        }
    }

    fn deploy(phase: Phase, steps: Vec<Step>) -> DeployStatus {
        DeployStatus {
            version: "v2".into(),
            phase: phase as i32,
            started_at: "2026-12-06T08:00:00Z".into(),
            steps,
            ..Default::default()
        }
    }

    #[test]
    fn a_retry_shows_under_its_running_step_with_attempt_error_and_next_try() {
        let status = deploy(
            Phase::Running,
            vec![
                step("preflight", StepState::Done, "08:00:00", "08:00:01.500"),
                step("await health", StepState::Running, "08:00:02", ""),
                step("switch traffic", StepState::Pending, "", ""),
            ],
        );
        let retry = Retry {
            activity: "health_check".into(),
            attempt: 3,
            last_error: "connection refused".into(),
            next_attempt_at: Some(at("08:00:14")),
        };
        let frame = frame(&status, &[retry], "local", at("08:00:12"));
        assert_eq!(
            frame,
            [
                "deploy v2 to local: running (12.0s)",
                "  ✓ preflight              1.5s",
                "  ▶ await health          10.0s",
                "      ↻ health_check attempt 3, next in 2.0s: connection refused",
                "  · switch traffic",
            ]
        );
    }

    #[test]
    fn a_waiting_gate_shows_its_deadline_and_the_commands_that_answer_it() {
        let mut status = deploy(
            Phase::AwaitingApproval,
            vec![step("approval", StepState::Running, "08:00:05", "")],
        );
        status.gate = Some(Gate {
            name: "before switch".into(),
            waiting_since: "2026-12-06T08:00:05Z".into(),
            deadline: "2026-12-06T09:00:05Z".into(),
            expiry: 0,
        });
        let frame = frame(&status, &[], "staging", at("08:02:05"));
        assert_eq!(
            frame[2..],
            [
                "  ⏸ waiting for approval for 2m 00s; deadline 09:00:05 UTC (in 58m 00s)",
                "      approve: deployctl --env staging approve --comment \"...\"",
                "      reject:  deployctl --env staging reject --reason \"...\"",
            ]
        );
        // Answered: the commands go.
        status.approval = Some(Default::default());
        assert_eq!(frame_len(&status), 2);
    }

    fn frame_len(status: &DeployStatus) -> usize {
        frame(status, &[], "local", at("08:02:05")).len()
    }

    #[test]
    fn spans_stay_short() {
        assert_eq!(span(4.25), "4.2s");
        assert_eq!(span(185.0), "3m 05s");
        assert_eq!(span(3720.0), "1h 02m");
        assert_eq!(span(-1.0), "0.0s");
    }
}
