//! The agent with real processes and a real deploy root. Every test gives `watch` an interval
//! of an hour, so whatever it reports in the test came from an event, not from its interval.

mod util;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::process::Command;
use util::*;

fn watch(root: &DeployRoot, extra: &[&str]) -> Background {
    let mut args: Vec<OsString> = vec![
        "watch".into(),
        root.path().into(),
        "--interval".into(),
        "1h".into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    let agent = Background::start(args);
    agent.wait_for_stderr("watching 1 deploy root");
    agent
}

fn stop(agent: Background) -> Run {
    kill(Pid::from_raw(agent.pid()), Signal::SIGTERM).unwrap();
    let run = agent.finish();
    assert_eq!(run.code, 0, "SIGTERM ends the agent cleanly: {run}");
    assert!(run.stderr.contains("stopping on SIGTERM"), "{run}");
    run
}

#[test]
fn a_deleted_release_is_reported_on_the_delete_and_clears_when_the_process_ends() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let worker = Child::sleep_in(&r1);
    let agent = watch(&root, &["--grace", "1h"]);
    root.release("2");
    root.switch("2");
    agent.wait_for_stderr("appeared INFO old-release");
    root.delete("1");
    let log = agent.wait_for_stderr("appeared CRITICAL deleted-release");
    assert!(log.contains(&format!("pid {}", worker.pid())), "{log}");
    drop(worker);
    // The exit of a process a finding names wakes the agent (pidfd), not its interval.
    agent.wait_for_stderr("cleared deleted-release");
    stop(agent);
}

#[test]
fn an_old_release_becomes_a_warning_right_after_the_grace_period() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let _worker = Child::sleep_in(&r1);
    let agent = watch(&root, &["--grace", "2s"]);
    root.release("2");
    root.switch("2");
    // INFO during the grace period, then WARNING; on a slow host the first scan after the switch
    // may already be past the grace period and report WARNING at once.
    let log = agent.wait_for_stderr("WARNING old-release");
    assert!(log.contains("release=1"), "{log}");
    stop(agent);
}

#[test]
fn a_worker_that_keeps_dying_is_a_restart_loop() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    // A supervisor-like loop that restarts a short-lived worker forever.
    let _looping = Child::spawn(
        Command::new("sh")
            .args(["-c", "while :; do sleep 1; done"])
            .current_dir(&r1),
    );
    // Scan often, so the loop shows in several scans.
    let mut args: Vec<OsString> = vec!["watch".into(), root.path().into()];
    for a in [
        "--interval",
        "250ms",
        "--restart-limit",
        "3",
        "--restart-window",
        "1m",
    ] {
        args.push(a.into());
    }
    let agent = Background::start(args);
    let log = agent.wait_for_stderr("appeared WARNING restart-loop");
    assert!(log.contains("ended soon after they started"), "{log}");
    stop(agent);
}
#[test]
fn the_textfile_is_world_readable_and_always_whole() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let _worker = Child::sleep_in(&r1);
    let dir = tempdir();
    let mut args: Vec<OsString> = vec!["watch".into(), root.path().into()];
    for a in ["--interval", "100ms", "--textfile"] {
        args.push(a.into());
    }
    args.push(dir.path().into());
    let agent = Background::start(args);
    let prom = dir.path().join("relwatch.prom");
    poll("the textfile", || prom.exists().then_some(()));
    // Read it over and over while the agent rewrites it every 100 ms: never half a file.
    for _ in 0..300 {
        let text = std::fs::read_to_string(&prom).unwrap();
        assert!(
            text.ends_with('\n'),
            "a whole file ends with a newline: {text:?}"
        );
        assert!(
            text.contains("relwatch_last_scan_timestamp_seconds"),
            "{text}"
        );
    }
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&prom).unwrap().mode() & 0o777, 0o644);
    stop(agent);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers,
        [OsString::from("relwatch.prom")],
        "no temp files left behind"
    );
}
