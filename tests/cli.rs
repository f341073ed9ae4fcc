//! The command line itself: help, man page and completions come from one definition and
//! cover every command; usage errors are UNKNOWN (3), never clap's 2 (CRITICAL to a monitor),
//! and in JSON they are a JSON document on stdout; a closed pipe is a clean exit (tests/pipes.rs
//! holds that the exit code is still the verdict).

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

/// Regression: with `--format json` a bad argument printed on stderr only, so `relwatch check
/// --format json --grace 5 | jq` read empty input. Every way of asking for JSON gives the error
/// document, held to docs/JSON.md; the message for people is still on stderr.
#[test]
fn argument_errors_in_json_are_the_error_document() {
    for args in [
        &["check", "--format", "json", "--grace", "5"][..],
        &["check", "--grace", "5", "--format=json"],
        &["check", "-f", "json", "--frobnicate"],
        &["check", "-fjson", "--jobs", "0"],
        &["ps", "--format", "json", "--grace", "5"],
        &["in-use", "--format", "json"],
        &["in-use", "--format", "json", "/srv", "--deep"],
    ] {
        let run = relwatch(args);
        assert_eq!(run.code, 3, "{run}");
        let doc = run.error_doc();
        assert_eq!(
            (doc.version, doc.status, doc.exit_code),
            (1, Status::Unknown, 3),
            "{run}"
        );
        let said = run.stderr.lines().next().unwrap_or_default();
        let said = said.strip_prefix("error: ").unwrap_or(said);
        assert!(
            doc.error.starts_with(said) && !said.is_empty(),
            "the document says what stderr says: {run}"
        );
        assert!(!doc.error.contains('\n'), "{run}");
    }
}

/// A run that fails after parsing (a root or path that does not exist) is the same document.
#[test]
fn run_errors_in_json_are_the_error_document() {
    for args in [
        &["check", "/nonexistent/relwatch-root", "--format", "json"][..],
        &["ps", "/nonexistent/relwatch-root", "--format", "json"],
        &[
            "in-use",
            "/nonexistent/relwatch-release",
            "--format",
            "json",
        ],
    ] {
        let run = relwatch(args);
        assert_eq!(run.code, 3, "{run}");
        let doc = run.error_doc();
        assert_eq!((doc.status, doc.exit_code), (Status::Unknown, 3), "{run}");
        assert!(doc.error.contains("/nonexistent/relwatch-"), "{run}");
        assert!(run.stderr.contains(&doc.error), "stderr says it too: {run}");
    }
}

/// Text stays text: an error is on stderr alone, stdout stays empty.
#[test]
fn errors_in_text_leave_stdout_empty() {
    for args in [
        &["check", "--grace", "5"][..],
        &["check", "--format", "xml"],
        &["check", "/nonexistent/relwatch-root"],
    ] {
        let run = relwatch(args);
        assert_eq!(run.code, 3, "{run}");
        assert_eq!(run.stdout, "", "{run}");
        assert!(run.stderr.contains("error"), "{run}");
    }
}

/// Regression: `relwatch ps --format nagios` printed `RELWATCH WARNING` and exited 0, and a
/// poller took the 0. `ps` exits 0 whatever it shows, so the monitoring formats are `check`'s:
/// `ps` refuses them, in the format asked for (a poller reads only stdout).
#[test]
fn ps_refuses_the_monitoring_formats_in_them() {
    let run = relwatch(["ps", "--format", "nagios"]);
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stdout
            .starts_with("RELWATCH UNKNOWN - invalid value 'nagios' for '--format <FORMAT>'"),
        "{run}"
    );
    let run = relwatch(["ps", "-f", "prometheus"]);
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stdout.contains("\nrelwatch_exit_code 3\n"), "{run}");
    let help = relwatch(["ps", "--help"]);
    assert!(
        help.stdout
            .contains("nagios and prometheus are check's: ps exits 0 whatever it shows"),
        "{help}"
    );
    assert!(help.stdout.contains("[default: text]"), "{help}");
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    // An empty directory: no deploy roots, a one-line OK written into the closed pipe.
    let empty = tempfile::tempdir().unwrap();
    let empty = empty.path().to_str().unwrap();
    for args in [
        vec!["completions", "bash"],
        vec!["man"],
        vec!["check", "--discover", empty],
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
