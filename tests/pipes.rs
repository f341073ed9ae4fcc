//! Exit codes survive pipes: `relwatch check R | head -0` exits with the verdict, never 0 by
//! accident (issue 17). Each command runs against a real deploy root with real processes, as
//! the left side of a bash pipeline under `set -o pipefail` whose reader has gone, so every
//! write relwatch makes fails with EPIPE. The pipeline's status must be relwatch's verdict, and
//! nothing may be said on stderr: a closed pipe is not an error.

mod util;

use std::ffi::{OsStr, OsString};
use util::*;

/// `set -o pipefail; { ...; relwatch ARGS; } | head -n 0`, with the reader gone before relwatch
/// starts: the left side first writes single bytes until the pipe refuses them (EPIPE, SIGPIPE
/// ignored), which it does only once `head` has exited. Without that wait, relwatch's output
/// could fit in the pipe's buffer before `head` exits and no write would ever fail. Returns the
/// pipeline's status and everything said on stderr.
fn into_closed_pipe<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    const SCRIPT: &str = r#"set -o pipefail
{ trap '' PIPE; while printf x 2>/dev/null; do :; done; exec "$0" "$@"; } | head -n 0"#;
    let mut argv: Vec<OsString> = vec![
        "-c".into(),
        SCRIPT.into(),
        env!("CARGO_BIN_EXE_relwatch").into(),
    ];
    argv.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
    run_program("bash", argv)
}

/// A master with two workers on release 1, which the cleanup deleted after the switch to 2:
/// `check` says CRITICAL.
fn incident() -> (DeployRoot, Child) {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let master = Child::master_with_workers(&r1, 2);
    root.release("2");
    root.switch("2");
    root.delete("1");
    (root, master)
}

fn with_root<'a>(root: &'a DeployRoot, args: &[&'a str]) -> Vec<&'a OsStr> {
    let mut all: Vec<&OsStr> = args.iter().map(|a| OsStr::new(*a)).collect();
    all.insert(1, root.path().as_os_str());
    all
}

/// Regression: main.rs took any broken pipe for a clean exit, so `relwatch check R | head -0`
/// exited 0 over a deleted release.
#[test]
fn check_exits_with_its_verdict_into_a_closed_pipe_in_every_format() {
    let (root, _master) = incident();
    for format in ["text", "json", "nagios", "prometheus"] {
        let run = into_closed_pipe(with_root(&root, &["check", "--format", format]));
        assert_eq!(run.code, 2, "check --format {format}: {run}");
        assert_eq!(run.stderr, "", "a closed pipe is not an error: {run}");
    }
}

/// `ps` exits 0 whatever it shows (its rule, see `relwatch ps --help`), also into a closed pipe,
/// and says nothing on stderr.
#[test]
fn ps_keeps_its_exit_code_into_a_closed_pipe() {
    let (root, _master) = incident();
    for format in ["text", "json"] {
        let run = into_closed_pipe(with_root(&root, &["ps", "--format", format]));
        assert_eq!(run.code, 0, "ps --format {format}: {run}");
        assert_eq!(run.stderr, "", "{run}");
    }
}

/// Regression: `relwatch in-use R | true` exited 0, "safe to delete", for a release a live
/// process used.
#[test]
fn in_use_exits_1_into_a_closed_pipe() {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let _worker = Child::sleep_in(&r1);
    for format in ["text", "json"] {
        let run = into_closed_pipe([
            "in-use".as_ref(),
            r1.as_os_str(),
            "-f".as_ref(),
            format.as_ref(),
        ]);
        assert_eq!(run.code, 1, "in-use --format {format}: {run}");
        assert_eq!(run.stderr, "", "{run}");
    }
    // The form the issue reports, with `| true` as the reader.
    let run = run_program(
        "bash",
        vec![
            "-c".into(),
            r#"set -o pipefail; "$0" in-use "$1" | true"#.into(),
            env!("CARGO_BIN_EXE_relwatch").into(),
            r1.into_os_string(),
        ],
    );
    assert_eq!(run.code, 1, "relwatch in-use R | true: {run}");
    assert_eq!(run.stderr, "", "{run}");
}

/// `wait` into a closed pipe: 2 at once over a deleted release, 1 on timeout after writing its
/// progress lines to nobody.
#[test]
fn wait_exits_with_its_verdict_into_a_closed_pipe() {
    let (root, _master) = incident();
    let run = into_closed_pipe(with_root(&root, &["wait", "--timeout", "30s"]));
    assert_eq!(run.code, 2, "wait over a deleted release: {run}");
    assert_eq!(run.stderr, "", "{run}");

    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let _stuck = Child::sleep_in(&r1);
    root.release("2");
    root.switch("2");
    let run = into_closed_pipe(with_root(&root, &["wait", "--timeout", "1s"]));
    assert_eq!(run.code, 1, "wait timed out: {run}");
    assert_eq!(run.stderr, "", "{run}");
}

/// A failed run into a closed pipe: 3, the message on stderr, and no second complaint about
/// the pipe its document could not be written to.
#[test]
fn errors_exit_3_into_a_closed_pipe() {
    for args in [
        &["check", "--format", "nagios", "--grace", "5"][..],
        &["check", "/nonexistent/relwatch-root", "--format", "json"],
        &[
            "in-use",
            "/nonexistent/relwatch-release",
            "--format",
            "json",
        ],
    ] {
        let run = into_closed_pipe(args);
        assert_eq!(run.code, 3, "{args:?}: {run}");
        assert!(run.stderr.contains("error"), "it says why: {run}");
        assert!(
            !run.stderr.to_lowercase().contains("pipe"),
            "the closed pipe is no error: {run}"
        );
    }
}

/// stderr into a pipe whose reader has gone (`relwatch ... 2>&1 >/dev/null | head -0` in a
/// hook): every message relwatch says fails with EPIPE. That must not turn the verdict into a
/// panic's 101; stdout (the report) is untouched.
#[test]
fn a_closed_stderr_keeps_the_verdict() {
    const SCRIPT: &str = r#"set -o pipefail
{ trap '' PIPE; while printf x 2>/dev/null; do :; done; exec "$0" "$@" 2>&1 >/dev/null; } | head -n 0"#;
    let (root, _master) = incident();
    for (args, code) in [
        // an error: said on stderr, exit 3
        (
            vec![OsString::from("check"), "/nonexistent/relwatch-root".into()],
            3,
        ),
        // discovery says what it found on stderr; the incident is CRITICAL
        (
            vec![
                OsString::from("check"),
                "--discover".into(),
                root.tmp().into(),
                "--grace".into(),
                "0s".into(),
            ],
            2,
        ),
    ] {
        let mut argv: Vec<OsString> = vec![
            "-c".into(),
            SCRIPT.into(),
            env!("CARGO_BIN_EXE_relwatch").into(),
        ];
        argv.extend(args.iter().cloned());
        let run = run_program("bash", argv);
        assert_eq!(run.code, code, "{args:?}: {run}");
    }
}
