// `promtool check metrics`, shared by the Prometheus renderer's unit tests
// (src/report/prometheus.rs includes this file) and the integration tests. Plain comments:
// `include!` takes no inner doc comment.

/// Runs `promtool check metrics` on `text`, which must pass with nothing said. Returns false
/// when promtool is not installed (Debian: the `prometheus` package): the caller's check is
/// skipped with a note, except under CI=true, where it fails.
pub fn check_metrics(text: &str) -> bool {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "promtool is not installed (apt install prometheus) and CI=true"
        );
        eprintln!("promtool not installed: not checked");
        return false;
    };
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let res = child.wait_with_output().expect("wait for promtool");
    assert!(
        res.status.success() && res.stdout.is_empty() && res.stderr.is_empty(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    true
}
