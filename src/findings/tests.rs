//! Rules on hand-built snapshots: no /proc, no filesystem, exact inputs.

use super::*;
use crate::attribution::{attribute, How};
use crate::layout::Current;
use crate::settings::AppSettings;
use crate::settings::Settings;
use crate::snapshot::{LinkError, Process};
use crate::testkit::{current, link, root, snapshot as snap};
use std::time::Duration;

const SWITCH: f64 = 1_000_000.0;

/// App `app` at /srv/app, switched to `current` at [`SWITCH`], its releases owned by uid 1000
/// and each created at its inode number in seconds.
fn app(current_release: &[u8], releases: &[(&[u8], u64)]) -> DeployRoot {
    DeployRoot {
        switch_time: Some(SWITCH),
        owner_uid: Some(1000),
        ..root("app", b"/srv/app", current(current_release), releases)
    }
}

/// A `worker` of uid 1000 in `cwd`, started `started` seconds after boot.
fn proc_(
    pid: i32,
    ppid: i32,
    cwd: Result<crate::snapshot::Link, LinkError>,
    started: f64,
) -> Process {
    crate::testkit::process(pid, ppid, cwd, started, &["worker"])
}

fn run(roots: &[DeployRoot], s: &Snapshot, grace_secs: u64) -> Vec<Finding> {
    let mut attr = attribute(roots, s);
    crate::attribution::inherit_from_masters(&mut attr, s, &crate::owner::is_supervisor);
    evaluate(&Input {
        roots,
        snap: s,
        attr: &attr,
        owners: &crate::owner::Owners::default(),
        settings: &Settings {
            apps: vec![AppSettings::with_grace(Duration::from_secs(grace_secs)); roots.len()],
        },
        history: None,
    })
}

#[test]
fn master_and_workers_on_a_deleted_release_are_one_finding() {
    let roots = [app(b"67", &[(b"66", 66), (b"67", 67)])];
    let gone = || link(b"/srv/app/releases/65 (deleted)", 65, 0);
    let s = snap(
        vec![
            proc_(100, 1, gone(), 5.0),
            proc_(101, 100, gone(), 6.0),
            proc_(102, 100, gone(), 7.0),
            proc_(103, 102, gone(), 8.0), // a grandchild stays in the same tree
            proc_(200, 1, link(b"/srv/app/releases/67", 67, 2), 9.0),
        ],
        SWITCH + 10.0,
    );
    let f = run(&roots, &s, 300);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].kind, Kind::DeletedRelease);
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(f[0].master, Some(100));
    assert_eq!(f[0].pids, [100, 101, 102, 103]);
    assert_eq!(f[0].release.as_deref(), Some(std::ffi::OsStr::new("65")));
    let Detail::DeletedRelease { top, workers, .. } = &f[0].detail else {
        panic!("{f:#?}");
    };
    // Every process below the master is counted: the count is its pids' but one.
    assert_eq!((top.pid, *workers), (100, 3));
}

/// A worker whose own cwd names no release (a daemonised worker in `/`), and its child, are
/// in their master's finding, with evidence that names the master; a process under PID 1 or
/// under a supervisor inherits nothing.
#[test]
fn a_masters_whole_tree_is_in_its_finding() {
    let roots = [app(b"67", &[(b"66", 66), (b"67", 67)])];
    let gone = || link(b"/srv/app/releases/65 (deleted)", 65, 0);
    let root_dir = || link(b"/", 2, 20);
    let supervisord = crate::testkit::process(300, 1, gone(), 1.0, &["supervisord", "-n"]);
    let s = snap(
        vec![
            proc_(100, 1, gone(), 5.0),
            proc_(101, 100, root_dir(), 6.0),
            proc_(102, 101, root_dir(), 7.0),
            proc_(200, 1, root_dir(), 7.0),
            supervisord,
            proc_(301, 300, root_dir(), 7.0),
        ],
        SWITCH + 10.0,
    );
    let f = run(&roots, &s, 300);
    let deleted: Vec<&Finding> = f
        .iter()
        .filter(|f| f.kind == Kind::DeletedRelease)
        .collect();
    assert_eq!(deleted.len(), 2, "{f:#?}");
    assert_eq!(deleted[0].pids, [100, 101, 102]);
    assert_eq!(deleted[0].master, Some(100));
    assert_eq!(
        deleted[1].pids,
        [300],
        "a supervisor's program keeps its own place"
    );
    let inherited: Vec<(i32, How)> = deleted[0].evidence.iter().map(|e| (e.pid, e.how)).collect();
    assert_eq!(
        inherited,
        [(100, How::Cwd), (101, How::Master), (102, How::Master)]
    );
    let Detail::DeletedRelease { workers, .. } = &deleted[0].detail else {
        panic!("{f:#?}");
    };
    assert_eq!(*workers, 2);
}

/// A worker forked after the switch by a master that started before it, both naming
/// `current/` on their command lines (cwd outside the releases): the worker's start is not
/// when it loaded the code, its master's is. It is on the master's old release.
#[test]
fn a_forked_copy_runs_its_masters_release_not_its_own_start_times() {
    let roots = [app(b"67", &[(b"66", 66), (b"67", 67)])];
    let home = || link(b"/home/deploy", 3, 20);
    let args = ["php", "/srv/app/current/worker.php"];
    let master = crate::testkit::process(100, 1, home(), SWITCH - 50.0, &args);
    let worker = crate::testkit::process(101, 100, home(), SWITCH + 50.0, &args);
    let s = snap(vec![master, worker], SWITCH + 100.0);
    let f = run(&roots, &s, 0);
    let old: Vec<&Finding> = f.iter().filter(|f| f.kind == Kind::OldRelease).collect();
    assert_eq!(old.len(), 1, "{f:#?}");
    assert_eq!(old[0].pids, [100, 101]);
}

#[test]
fn old_release_is_info_within_grace_and_warning_after() {
    let roots = [app(b"67", &[(b"66", 66), (b"67", 67)])];
    let p = || vec![proc_(100, 1, link(b"/srv/app/releases/66", 66, 2), 5.0)];
    let within = run(&roots, &snap(p(), SWITCH + 60.0), 300);
    assert_eq!(within.len(), 1);
    assert_eq!(within[0].kind, Kind::OldRelease);
    assert_eq!(within[0].severity, Severity::Info);
    let after = run(&roots, &snap(p(), SWITCH + 301.0), 300);
    assert_eq!(after[0].severity, Severity::Warning);
}

#[test]
fn a_live_release_named_like_a_deleted_one_is_not_deleted() {
    // The kernel would print the same text for a deleted "7"; the link count tells them apart.
    let roots = [app(b"7 (deleted)", &[(b"7 (deleted)", 7)])];
    let s = snap(
        vec![proc_(
            100,
            1,
            link(b"/srv/app/releases/7 (deleted)", 7, 2),
            5.0,
        )],
        SWITCH + 10.0,
    );
    assert!(run(&roots, &s, 0).is_empty());
    // and the same process with its directory really gone is critical
    let s = snap(
        vec![proc_(
            100,
            1,
            link(b"/srv/app/releases/7 (deleted) (deleted)", 7, 0),
            5.0,
        )],
        SWITCH + 10.0,
    );
    let roots = [app(b"8", &[(b"8", 8)])];
    let f = run(&roots, &s, 0);
    assert_eq!(f[0].kind, Kind::DeletedRelease);
    assert_eq!(
        f[0].release.as_deref(),
        Some(std::ffi::OsStr::new("7 (deleted)"))
    );
}

fn via_current(pid: i32, started: f64) -> Process {
    let mut p = proc_(pid, 1, link(b"/", 2, 20), started);
    p.cmdline = ["php", "/srv/app/current/artisan"].into_iter().collect();
    p
}

#[test]
fn a_path_through_current_is_judged_by_start_time_to_the_tick() {
    let roots = [app(b"67", &[(b"66", 66), (b"67", 67)])];
    let s = snap(
        vec![
            via_current(100, SWITCH - 0.02), // whole tick before the switch: old
            via_current(101, SWITCH),        // same tick: cannot tell, not flagged
            via_current(102, SWITCH + 0.05), // after: current
        ],
        SWITCH + 1000.0,
    );
    let f = run(&roots, &s, 0);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].pids, [100]);
    assert_eq!(f[0].kind, Kind::OldRelease);
    // the newest release created before it started, other than current, is named
    assert_eq!(f[0].release.as_deref(), Some(std::ffi::OsStr::new("66")));
    assert_eq!(f[0].evidence[0].how.as_str(), "via-current");
}

#[test]
fn a_path_through_current_older_than_every_release_ran_a_deleted_one() {
    let roots = [app(b"67", &[(b"66", 500), (b"67", 600)])];
    let s = snap(vec![via_current(100, 100.0)], SWITCH + 10.0);
    let f = run(&roots, &s, 0);
    assert_eq!(f[0].kind, Kind::DeletedRelease);
    assert_eq!(f[0].release, None);
}

#[test]
fn a_broken_current_link_is_critical_and_hides_no_deleted_release() {
    let mut r = app(b"67", &[(b"66", 66)]);
    r.current = Current::Dangling {
        target: std::ffi::OsStr::new("releases/67").into(),
    };
    let s = snap(
        vec![
            proc_(100, 1, link(b"/srv/app/releases/66", 66, 2), 5.0),
            proc_(101, 1, link(b"/srv/app/releases/60 (deleted)", 60, 0), 5.0),
        ],
        SWITCH + 10.0,
    );
    let f = run(&[r], &s, 0);
    let kinds: Vec<_> = f.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [Kind::BrokenCurrent, Kind::DeletedRelease], "{f:#?}");
}

#[test]
fn unreadable_process_of_the_deploy_user_is_unknown() {
    let roots = [app(b"67", &[(b"67", 67)])];
    let mut hidden = proc_(100, 1, Err(LinkError::Denied), 5.0);
    hidden.exe = Err(LinkError::Denied);
    let mut stranger = proc_(101, 1, Err(LinkError::Denied), 5.0);
    stranger.exe = Err(LinkError::Denied);
    stranger.uid = 4242;
    let f = run(&roots, &snap(vec![hidden, stranger], SWITCH), 0);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].kind, Kind::Unreadable);
    assert_eq!(f[0].pids, [100]);
    assert_eq!(
        crate::exit::ExitCode::from_worst(worst(&f)),
        crate::exit::ExitCode::Unknown
    );
}

#[test]
fn sorting_in_place_is_stable_and_moves_everything() {
    use proptest::prelude::*;
    proptest!(|(v in prop::collection::vec((0u8..4, any::<u16>()), 0..64))| {
        let mut ours = v.clone();
        super::sort_in_place(&mut ours, |a, b| a.0.cmp(&b.0));
        let mut std = v.clone();
        std.sort_by_key(|a| a.0);
        prop_assert_eq!(ours, std);
    });
}

/// A scan of 20,000 processes can make thousands of findings, all kept until the report is
/// out: their facts must cost no more than the two sentences they replaced (176 bytes a
/// finding then, and some 200 more on the heap for its message and remedy).
#[test]
fn a_finding_stays_small() {
    let size = std::mem::size_of::<Finding>();
    assert!(size <= 256, "a Finding takes {size} bytes");
}
