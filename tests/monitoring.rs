//! `--format nagios`, `--format prometheus` and `--output` against a real deploy root: the
//! renderers' details are golden-tested in src/report/; here the whole path is.

mod util;

use std::os::unix::fs::MetadataExt;
use util::*;

fn incident() -> (DeployRoot, Child) {
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let master = Child::master_with_workers(&r1, 2);
    master.wait_for_children(2, "sleep");
    root.release("2");
    root.switch("2");
    root.delete("1");
    (root, master)
}

#[test]
fn nagios_status_line_perfdata_and_exit_code() {
    let (root, _master) = incident();
    let run = relwatch([
        "check".as_ref(),
        root.path().as_os_str(),
        "--format".as_ref(),
        "nagios".as_ref(),
    ]);
    assert_eq!(run.code, 2, "{run}");
    let first = run.stdout.lines().next().unwrap();
    assert!(first.starts_with("RELWATCH CRITICAL - "), "{first}");
    assert_eq!(
        run.stdout.matches('|').count(),
        1,
        "one perfdata separator: {run}"
    );
    let perf = first.split('|').nth(1).unwrap();
    assert!(
        perf.contains("deleted=3;"),
        "three processes on the deleted release: {perf}"
    );
    assert!(run.stdout.lines().count() > 1, "detail lines follow: {run}");
}

#[test]
fn nagios_errors_are_unknown_on_stdout() {
    let run = relwatch(["check", "/nonexistent/relwatch-root", "--format", "nagios"]);
    assert_eq!(run.code, 3, "{run}");
    assert!(
        run.stdout.starts_with("RELWATCH UNKNOWN - "),
        "NRPE reads stdout only: {run}"
    );
}

/// Regression: `check --format nagios --grace 5` printed nothing on stdout, and NRPE drops
/// stderr: the operator saw "(null)". A bad argument is an UNKNOWN status line, one line and no
/// perfdata, however it names the format.
#[test]
fn nagios_argument_errors_are_unknown_on_stdout() {
    for args in [
        &["check", "--format", "nagios", "--grace", "5"][..],
        &["check", "--format=nagios", "--frobnicate"],
        &["check", "-fnagios", "--grace", "5m|forged=1"],
        &["chek", "--format", "nagios"],
    ] {
        let run = relwatch(args);
        assert_eq!(run.code, 3, "{run}");
        assert!(
            run.stdout.starts_with("RELWATCH UNKNOWN - ") && run.stdout.ends_with('\n'),
            "{run}"
        );
        assert_eq!(run.stdout.lines().count(), 1, "{run}");
        assert!(
            !run.stdout.contains('|'),
            "no perfdata, no forged perfdata: {run}"
        );
        assert!(run.stderr.contains("error:"), "stderr says it too: {run}");
    }
    let run = relwatch(["check", "--format", "nagios", "--grace", "5"]);
    assert!(
        run.stdout
            .contains("invalid value '5' for '--grace <DURATION>'"),
        "it says what is wrong: {run}"
    );
}

/// An error in the Prometheus format is a textfile too: `relwatch_exit_code 3` and
/// `relwatch_error 1`, where the report would have gone. With `--output`, the last report in
/// the file is replaced, so node_exporter stops serving a stale OK.
#[test]
fn prometheus_errors_replace_the_textfile() {
    let (root, _master) = incident();
    let dir = tempdir();
    let file = dir.path().join("relwatch.prom");
    let check = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "check".as_ref(),
            "--format".as_ref(),
            "prometheus".as_ref(),
            "-o".as_ref(),
            file.as_os_str(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        relwatch(args)
    };
    let good = check(&[root.path().to_str().expect("a UTF-8 temp path")]);
    assert_eq!(good.code, 2, "{good}");
    let report = std::fs::read_to_string(&file).unwrap();
    assert!(report.contains("\nrelwatch_error 0\n"), "{report}");
    promtool::check_metrics(&report);
    for extra in [&["--grace", "5"][..], &["/nonexistent/relwatch-root"]] {
        let run = check(extra);
        assert_eq!(run.code, 3, "{run}");
        assert_eq!(run.stdout, "", "the document went to --output: {run}");
        assert!(run.stderr.contains("error"), "{run}");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("\nrelwatch_exit_code 3\n"), "{text}");
        assert!(text.contains("\nrelwatch_error 1\n"), "{text}");
        assert!(
            !text.contains("relwatch_findings"),
            "no stale findings: {text}"
        );
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o644);
        promtool::check_metrics(&text);
    }
    // Without --output, on stdout.
    let run = relwatch(["check", "--format", "prometheus", "--grace", "5"]);
    assert_eq!(run.code, 3, "{run}");
    assert!(run.stdout.contains("\nrelwatch_exit_code 3\n"), "{run}");
    promtool::check_metrics(&run.stdout);
}

#[test]
fn prometheus_output_file_is_written_atomically_and_world_readable() {
    let (root, _master) = incident();
    let dir = tempdir();
    let file = dir.path().join("relwatch.prom");
    let run = relwatch([
        "check".as_ref(),
        root.path().as_os_str(),
        "--format".as_ref(),
        "prometheus".as_ref(),
        "--output".as_ref(),
        file.as_os_str(),
    ]);
    assert_eq!(run.code, 2, "the exit code still tells: {run}");
    assert!(
        run.stdout.is_empty(),
        "nothing on stdout with --output: {run}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o644);
    let app = root.name();
    assert!(
        text.lines().any(|l| l.starts_with("relwatch_findings{")
            && l.contains(&format!("app=\"{app}\""))
            && l.contains("kind=\"deleted-release\"")
            && l.ends_with(" 1")),
        "{text}"
    );
    assert!(!text.contains("pid"), "never a pid as a label: {text}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(leftovers.len(), 1, "no temp file left behind");
}
