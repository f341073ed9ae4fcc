//! `relwatch demo` plays the incident, explains the report, and leaves nothing behind.

mod util;

use util::*;

#[test]
fn demo_shows_the_incident_and_cleans_up() {
    let run = relwatch(["demo"]);
    assert_eq!(run.code, 0, "{run}");
    let out = &run.stdout;
    assert!(out.contains("relwatch CRITICAL"), "{run}");
    assert!(out.contains("CRITICAL deleted-release  release 1"), "{run}");
    assert!(
        out.contains("master pid") && out.contains("2 workers"),
        "{run}"
    );
    assert!(out.contains("WARNING old-release  release 2"), "{run}");
    assert!(out.contains("What it says"), "{run}");

    // The deploy root it names is gone, and so is every pid it says it ended.
    let root = out
        .lines()
        .find_map(|l| l.strip_prefix("relwatch demo: a throwaway deploy root at "))
        .expect("the demo names its deploy root");
    assert!(
        !std::path::Path::new(root).exists(),
        "{root} was left behind"
    );
    let ended = out
        .lines()
        .find_map(|l| l.strip_prefix("relwatch demo: ended pids "))
        .and_then(|l| l.strip_suffix(" and removed the deploy root."))
        .expect("the demo lists what it ended");
    let pids: Vec<i32> = ended.split(", ").map(|p| p.parse().unwrap()).collect();
    assert_eq!(
        pids.len(),
        4,
        "a master, two workers and a straggler: {ended}"
    );
    for pid in pids {
        // A pid may be reused by now; it must at least not be a demo process.
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmd).contains("__demo-process"),
            "demo process {pid} is still running"
        );
    }
}
