//! `deployctl watch` in a real terminal: tmux runs it, and the test reads the screen as a
//! person would (capture-pane). The frame is redrawn in place, the gate shows the commands that
//! answer it, and the watch goes on through a kill and restart of the Temporal server until the
//! deploy ends, then exits with its outcome. (Each frame's lines, a retry among them, are
//! checked by the unit tests of `cli/src/watch.rs`.)

mod support;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use deployctl_proto::v1::Phase;
use support::*;

/// A tmux session on the tests' own server socket, removed when the test ends.
struct Tmux {
    session: String,
}

impl Tmux {
    fn tmux(arguments: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", "deployctl-tests"])
            .args(arguments)
            .output()
            .expect("running tmux (apt-get install tmux)")
    }

    fn run(command: &str) -> Self {
        let session = format!("watch-{}", std::process::id());
        let repository = repository();
        let output = Self::tmux(&[
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "160",
            "-y",
            "45",
            "-c",
            repository.to_str().unwrap(),
            "-e",
            "TEMPORAL_ADDRESS=127.0.0.1:7233",
            command,
        ]);
        assert!(output.status.success(), "{}", text(&output));
        Self { session }
    }

    fn screen(&self) -> String {
        let output = Self::tmux(&["capture-pane", "-p", "-t", &self.session]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The screen once `done` holds of it; fails with the screen after `limit`.
    async fn await_screen(
        &self,
        what: &str,
        limit: Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "never saw {what}:\n{screen}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        Self::tmux(&["kill-session", "-t", &self.session]);
    }
}

/// The number in "deploy v2 to local: awaiting approval (12.3s)", the frame's first line.
fn elapsed_in_header(screen: &str) -> (usize, String) {
    let headers: Vec<&str> = screen
        .lines()
        .filter(|line| line.starts_with("deploy ") && line.contains(" to local: "))
        .collect();
    let elapsed = headers
        .last()
        .and_then(|line| line.rsplit_once('('))
        .map(|(_, took)| took.trim_end_matches(')').to_string())
        .unwrap_or_default();
    (headers.len(), elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_redraws_in_place_shows_the_gate_and_goes_on_through_a_temporal_restart() {
    let _turn = exclusive();
    settled_stack().await;
    let target = other_version().await;
    let started = deployctl(&["start", "--version", target, "--approve-before-switch"]);
    assert!(started.status.success(), "{}", text(&started));
    await_phase(&[Phase::AwaitingApproval]).await;

    let watch = Tmux::run(&format!(
        "{} watch; echo \"watch exited with $?\"; sleep 600",
        env!("CARGO_BIN_EXE_deployctl")
    ));
    let minute = Duration::from_secs(60);
    let gate = watch
        .await_screen("the gate's commands", minute, |screen| {
            screen.contains("approve: deployctl --env local approve")
        })
        .await;
    assert!(gate.contains("⏸ waiting for approval"), "{gate}");
    assert!(
        gate.contains("reject:  deployctl --env local reject --reason"),
        "{gate}"
    );
    assert!(gate.contains("✓ start idle colour"), "{gate}");

    // Redrawn in place: the clock moves on, and the frame is still on the screen once.
    let (_, first) = elapsed_in_header(&gate);
    let later = watch
        .await_screen("the clock move on", minute, |screen| {
            elapsed_in_header(screen).1 != first
        })
        .await;
    assert_eq!(
        elapsed_in_header(&later).0,
        1,
        "one frame, redrawn:\n{later}"
    );

    // Temporal is killed and restarted under the watch; the deploy is approved once it is back.
    Command::new("docker")
        .args(["kill", "--signal", "KILL", "deployctl_temporal_1"])
        .output()
        .unwrap();
    Command::new("docker")
        .args(["start", "deployctl_temporal_1"])
        .output()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let approved = deployctl(&["approve", "--by", "watcher"]);
        if approved.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never approved: {}",
            text(&approved)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let ended = watch
        .await_screen("the watch end", Duration::from_secs(300), |screen| {
            screen.contains("watch exited with")
        })
        .await;
    assert!(ended.contains("watch exited with 0"), "{ended}");
    assert!(
        ended.contains(&format!("the deploy of {target} completed")),
        "{ended}"
    );
    assert_eq!(status().phase, Phase::Completed as i32);
}
