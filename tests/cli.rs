//! The command line itself: help, man page and completions come from one definition and
//! cover every command; usage errors are UNKNOWN (3), never clap's 2 (CRITICAL to a monitor);
//! a closed pipe is a clean exit (tests/pipes.rs holds that the exit code is still the verdict).

mod util;

use std::process::{Command, Stdio};
use util::*;

const COMMANDS: &[&str] = &[
    "check",
    "ps",
    "wait",
    "in-use",
    "watch",
    "completions",
    "man",
    "config",
];

#[test]
fn man_page_and_completions_cover_every_command() {
    let man = relwatch(["man"]);
    assert_eq!(man.code, 0, "{man}");
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH relwatch 1"),
        "{man}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let c = relwatch(["completions", shell]);
        assert_eq!(c.code, 0, "{c}");
        for cmd in COMMANDS {
            assert!(c.stdout.contains(cmd), "{shell} completion lacks {cmd}");
        }
    }
    let help = relwatch(["--help"]);
    let roff = man.stdout.replace("\\-", "-");
    for cmd in COMMANDS {
        assert!(help.stdout.contains(cmd), "--help lacks {cmd}: {help}");
        assert!(roff.contains(cmd), "the man page lacks {cmd}");
    }
    assert!(help.stdout.contains("Exit codes"), "{help}");
}

#[test]
fn usage_errors_exit_3() {
    for args in [
        vec!["frobnicate"],
        vec!["check", "--format", "xml"],
        vec!["in-use"],
    ] {
        let run = relwatch(&args);
        assert_eq!(run.code, 3, "{run}");
        assert!(!run.stderr.is_empty(), "it says what is wrong: {run}");
    }
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    for args in [
        vec!["completions", "bash"],
        vec!["man"],
        vec!["check", "--discover", "/nonexistent"],
    ] {
        // The read end is closed before the child starts: its first write fails with EPIPE.
        let (read_end, write_end) = nix::unistd::pipe().unwrap();
        drop(read_end);
        let out = Command::new(env!("CARGO_BIN_EXE_relwatch"))
            .args(&args)
            .stdout(Stdio::from(write_end))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn wait_and_watch_keep_their_own_words_for_the_shared_root_arguments() {
    // check, ps, wait and watch share one definition of ROOT, --config and --discover; wait and
    // watch reword them by argument id, so a renamed field would silently take check's words.
    let wait = relwatch(["wait", "--help"]);
    assert!(
        wait.stdout
            .contains("Config file: apps and roles (a duplicate singleton ends the wait with 2)"),
        "{wait}"
    );
    let discover = wait
        .stdout
        .find("--discover <DIR>")
        .expect("wait has --discover");
    let config = wait
        .stdout
        .find("--config <FILE>")
        .expect("wait has --config");
    assert!(discover < config, "wait lists --discover first: {wait}");
    assert!(!wait.stdout.contains("a trailing /*"), "{wait}");
    let watch = relwatch(["watch", "--help"]);
    assert!(
        watch
            .stdout
            .contains("the config file's apps, else discovery"),
        "{watch}"
    );
    assert!(
        watch
            .stdout
            .contains("Config file [default: /etc/relwatch/config.yaml"),
        "{watch}"
    );
    assert!(!watch.stdout.contains("a trailing /*"), "{watch}");
    let check = relwatch(["check", "--help"]);
    assert!(
        check.stdout.contains("a trailing /* means every"),
        "{check}"
    );
}
