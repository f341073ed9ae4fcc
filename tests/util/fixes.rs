//! Running the remedies a report prints, the way an operator pastes them: each distinct
//! `fix[].argv` as given (no shell), then polling `check` until it says OK. Shared by the tests
//! that prove a remedy fixes what it says (tests/appservers.rs, tests/queue_worker.rs).

use std::process::Command;

use serde_json::Value;

use super::{array, check_json, poll, DeployRoot};

/// Every distinct `fix[].argv` of every finding, run as given (no shell), in order. Only the
/// `programs` named are expected: a test must never restart a unit of the machine running it.
pub fn run_fixes(doc: &Value, programs: &[&str]) -> Vec<Vec<String>> {
    run_fixes_with(doc, programs, &[])
}

/// [`run_fixes`] with environment variables (PM2's home and its PATH).
pub fn run_fixes_with(
    doc: &Value,
    programs: &[&str],
    env: &[(&str, std::ffi::OsString)],
) -> Vec<Vec<String>> {
    let mut ran = Vec::new();
    for f in array(doc, "findings") {
        for fix in array(f, "fix") {
            let argv: Vec<String> = fix["argv"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            assert!(
                argv.first().is_some_and(|p| programs.contains(&p.as_str())),
                "unexpected remedy {argv:?} in {f:#}"
            );
            assert_eq!(fix["as"], 0, "the test runs as root: {f:#}");
            // Two findings about one pid (an orphan on a deleted release) give it the same
            // remedy: run once, as an operator would.
            if ran.contains(&argv) {
                continue;
            }
            let status = Command::new(&argv[0])
                .args(&argv[1..])
                .envs(env.iter().map(|(k, v)| (k, v)))
                .current_dir("/")
                .status()
                .unwrap_or_else(|e| panic!("run {argv:?}: {e}"));
            assert!(status.success(), "{argv:?} failed: {status}");
            ran.push(argv);
        }
    }
    ran
}

/// Polls `check` until it says OK with no finding (the remedy's processes take a moment to end).
pub fn until_ok(root: &DeployRoot) -> Value {
    poll("relwatch check to say OK", || {
        let (run, doc) = check_json([root.path()]);
        (run.code == 0 && array(&doc, "findings").is_empty()).then_some(doc)
    })
}
