//! How deploys read in a terminal (one line per step change, a status table, the push queue)
//! and in the Web UI (each run's static summary and details).

use deployctl_proto::v1::{Colour, DeployRequest, DeployStatus, Phase, PushQueue, Step, StepState};

pub use deployctl_workflows::plan::phase_name;

/// Where the words go: stdout, or stderr when `--json` keeps stdout for one JSON document.
#[derive(Clone, Copy)]
pub struct Terminal {
    pub json: bool,
}

impl Terminal {
    pub fn say(&self, line: impl std::fmt::Display) {
        if self.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    /// One event of a command that runs until stopped (`serve`): with `--json`, one JSON
    /// document per line on stdout; otherwise the words.
    /// A closed stdout does not stop the command.
    pub fn event(&self, document: serde_json::Value, words: impl std::fmt::Display) {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let _ = match self.json {
            true => writeln!(stdout, "{document}"),
            false => writeln!(stdout, "{words}"),
        };
    }
}

fn colour_name(colour: i32) -> &'static str {
    match Colour::try_from(colour).unwrap_or_default() {
        Colour::Blue => "blue",
        Colour::Green => "green",
        Colour::Unspecified => "none",
    }
}

/// A step's state as one character.
pub fn mark(state: i32) -> &'static str {
    match StepState::try_from(state).unwrap_or_default() {
        StepState::Done => "✓",
        StepState::Running => "▶",
        StepState::Failed => "✗",
        StepState::Skipped => "–",
        _ => "·",
    }
}

fn clock(timestamp: &str) -> &str {
    timestamp.get(11..19).unwrap_or("")
}

fn step_line(step: &Step) -> String {
    let when = match (clock(&step.started_at), clock(&step.finished_at)) {
        ("", _) => String::new(),
        (start, "") => start.to_string(),
        (start, end) => format!("{start} → {end}"),
    };
    format!(
        "  {} {:<18} {:<19} {}",
        mark(step.state),
        step.name,
        when,
        step.detail
    )
}

/// Lines for what changed between two looks at the status.
pub fn changes(before: &DeployStatus, after: &DeployStatus) -> Vec<String> {
    let mut lines = Vec::new();
    for step in &after.steps {
        let old = before.steps.iter().find(|s| s.name == step.name);
        if old.map(|s| (s.state, &s.detail)) != Some((step.state, &step.detail))
            && step.state != StepState::Pending as i32
        {
            lines.push(step_line(step));
        }
    }
    if let (Some(gate), None) = (&after.gate, &before.gate) {
        let deadline = if gate.deadline.is_empty() {
            String::new()
        } else {
            format!(" (deadline {})", gate.deadline)
        };
        lines.push(format!(
            "  ⏸ waiting for approval{deadline}: run `deployctl approve` or `deployctl reject --reason ...`"
        ));
    }
    if !after.bake_until.is_empty() && before.bake_until.is_empty() {
        lines.push(format!(
            "  ⏳ baking until {}: `deployctl rollback` returns traffic to the old colour at once",
            after.bake_until
        ));
    }
    for line in after.notices.iter().skip(before.notices.len()) {
        lines.push(format!("  ⚠ {line}"));
    }
    for line in after.compensation.iter().skip(before.compensation.len()) {
        lines.push(format!("  ↩ {line}"));
    }
    for line in after
        .refused_inputs
        .iter()
        .skip(before.refused_inputs.len())
    {
        lines.push(format!("  ! {line}"));
    }
    if after.phase != before.phase && after.phase != Phase::Running as i32 {
        lines.push(format!(
            "deploy {}: {}",
            after.version,
            phase_name(after.phase)
        ));
    }
    lines
}

pub fn render(status: &DeployStatus) -> String {
    let mut text = format!(
        "deploy of {} to {} ({}): {}\nstarted by {} at {}\nlive colour before: {}, target colour: {}\n",
        status.version,
        status.environment,
        status.image,
        phase_name(status.phase),
        status.requested_by,
        status.started_at,
        colour_name(status.live_colour),
        colour_name(status.target_colour),
    );
    for step in &status.steps {
        text.push_str(&step_line(step));
        text.push('\n');
    }
    if let Some(gate) = &status.gate {
        text.push_str(&format!(
            "waiting at gate {:?} since {}\n",
            gate.name, gate.waiting_since
        ));
    }
    if let Some(approval) = &status.approval {
        text.push_str(&format!(
            "approved by {}: {}\n",
            approval.approved_by, approval.comment
        ));
    }
    if let Some(rejection) = &status.rejection {
        text.push_str(&format!(
            "rejected by {}: {}\n",
            rejection.rejected_by, rejection.reason
        ));
    }
    if !status.failed_step.is_empty() {
        text.push_str(&format!("stopped at step: {}\n", status.failed_step));
    }
    if !status.error.is_empty() {
        text.push_str(&format!("error: {}\n", status.error));
    }
    for line in &status.notices {
        text.push_str(&format!("notice: {line}\n"));
    }
    for line in &status.compensation {
        text.push_str(&format!("compensation: {line}\n"));
    }
    for line in &status.refused_inputs {
        text.push_str(&format!("refused input: {line}\n"));
    }
    text
}

/// The version serving before the next deploy, as the environment's last deploy left it: its
/// own after it completed, otherwise the one it started from (every other end puts traffic
/// back). `None` when that is not known.
pub fn live_version(last: &DeployStatus) -> Option<String> {
    let version = match Phase::try_from(last.phase).unwrap_or_default() {
        Phase::Completed => last.version.clone(),
        _ => deployctl_workflows::plan::previous_version(last).unwrap_or_default(),
    };
    (!version.is_empty()).then_some(version)
}

pub use deployctl_workflows::visibility::summary;

/// The run's details in the Web UI (Markdown): who asked, and the options that shape it.
pub fn details(request: &DeployRequest) -> String {
    let mut lines = vec![format!(
        "Requested by **{}** with `deployctl start --version {}`.",
        request.requested_by, request.version
    )];
    if request.approve_before_switch {
        let deadline = match request.approval_timeout_seconds {
            0 => "no deadline".to_string(),
            seconds => format!("deadline {seconds} s"),
        };
        lines.push(format!(
            "- Approval gate before the switch ({deadline}): `deployctl approve`, or the `approve` \
             signal with `{{\"approved_by\": \"...\", \"comment\": \"...\"}}`."
        ));
    }
    if let Some(bake) = request.bake.filter(|bake| bake.seconds > 0) {
        lines.push(format!(
            "- Bake {} s after the switch: `deployctl rollback` returns traffic at once.",
            bake.seconds
        ));
    }
    if let Some(replicas) = request
        .worker_roll
        .as_ref()
        .map(|roll| roll.replicas)
        .filter(|r| *r > 0)
    {
        lines.push(format!("- {replicas} workers after the deploy."));
    }
    lines.join("\n")
}

/// The push queue in a few lines: what it waits for, the tag it deploys next, and what it did.
pub fn render_queue(queue: &PushQueue) -> String {
    let waiting_for = match queue.waiting_for.as_str() {
        "" => "nothing",
        waiting_for => waiting_for,
    };
    let mut lines = vec![
        format!("push queue of {}", queue.environment),
        format!("  waits for   {waiting_for}"),
    ];
    lines.push(match &queue.pending {
        Some(push) => format!(
            "  next        {} (delivery {}, requested by {})",
            push.tag,
            push.delivery_id,
            push.request
                .as_ref()
                .map_or("", |r| r.requested_by.as_str())
        ),
        None => "  next        nothing pending".into(),
    });
    for deployed in &queue.deployed {
        lines.push(format!(
            "  deployed    {} (delivery {}): {}",
            deployed.tag, deployed.delivery_id, deployed.outcome
        ));
    }
    for superseded in &queue.superseded {
        lines.push(format!("  superseded  {superseded}"));
    }
    for refused in &queue.refused_inputs {
        lines.push(format!("  refused     {refused}"));
    }
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod web_ui_tests {
    use super::*;

    fn ended(phase: Phase, version: &str, previous_image: &str) -> DeployStatus {
        DeployStatus {
            phase: phase as i32,
            version: version.into(),
            previous_image: previous_image.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_live_version_is_what_the_last_deploy_left_serving() {
        let completed = ended(Phase::Completed, "v2", "ecomweb-api:v1");
        assert_eq!(live_version(&completed).as_deref(), Some("v2"));
        for phase in [
            Phase::Rejected,
            Phase::RolledBack,
            Phase::Failed,
            Phase::Aborted,
        ] {
            let back = ended(phase, "v2", "ecomweb-api:v1");
            assert_eq!(live_version(&back).as_deref(), Some("v1"), "{phase:?}");
        }
        // Refused in preflight: nothing was read, so nothing is claimed.
        assert_eq!(live_version(&ended(Phase::Failed, "v9", "")), None);
    }

    #[test]
    fn the_summary_names_both_versions_when_it_knows_them() {
        assert_eq!(summary("local", Some("v1"), "v2"), "deploy local v1 → v2");
        assert_eq!(summary("local", None, "v2"), "deploy local → v2");
    }
}
