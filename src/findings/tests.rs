//! Rules on hand-built snapshots: no /proc, no filesystem, exact inputs.

use super::*;
use crate::attribution::attribute;
use crate::layout::{Current, Release};
use crate::settings::AppSettings;
use crate::settings::Settings;
use crate::snapshot::{Clock, Link, LinkError, Process};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;

const SWITCH: f64 = 1_000_000.0;

fn release(name: &[u8], ino: u64, created: f64) -> Release {
    let name = OsString::from_vec(name.to_vec());
    Release {
        path: PathBuf::from("/srv/app/releases").join(&name),
        name,
        dev: 1,
        ino,
        created: Some(created),
    }
}

fn root(current: &[u8], releases: Vec<Release>) -> DeployRoot {
    DeployRoot {
        name: "app".into(),
        root: "/srv/app".into(),
        link: "/srv/app/current".into(),
        releases_dir: Some("/srv/app/releases".into()),
        current: Current::Ok {
            release: OsString::from_vec(current.to_vec()),
        },
        switch_time: Some(SWITCH),
        releases,
        truncated: false,
        owner_uid: Some(1000),
        releases_spellings: vec!["/srv/app/releases".into()],
        link_spellings: vec!["/srv/app/current".into()],
        releases_rel: None,
    }
}

fn link(target: &[u8], ino: u64, nlink: u32) -> Result<Link, LinkError> {
    Ok(Link {
        target: OsString::from_vec(target.to_vec()).into(),
        dev: 1,
        ino,
        nlink,
    })
}

fn proc_(pid: i32, ppid: i32, cwd: Result<Link, LinkError>, start_ticks: u64) -> Process {
    Process {
        pid,
        ppid,
        comm: b"worker".to_vec().into(),
        state: b'S',
        start_ticks,
        uid: 1000,
        dir_ino: 0,
        kernel_thread: false,
        cmdline: ["worker"].into_iter().collect(),
        cwd,
        exe: link(b"/usr/bin/php", 99, 1),
    }
}

/// Clock with boot at epoch 0 and 100 ticks/s: start_ticks = seconds * 100.
fn snap(mut processes: Vec<Process>, now: f64) -> Snapshot {
    processes.sort_by_key(|p| p.pid);
    Snapshot::new(
        processes,
        Clock {
            ticks_per_second: 100,
            boot_epoch: 0.0,
            now,
        },
        1,
        0,
    )
}

fn run(roots: &[DeployRoot], s: &Snapshot, grace_secs: u64) -> Vec<Finding> {
    let attr = attribute(roots, s);
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
    let roots = [root(
        b"67",
        vec![release(b"66", 66, 10.0), release(b"67", 67, 20.0)],
    )];
    let gone = || link(b"/srv/app/releases/65 (deleted)", 65, 0);
    let s = snap(
        vec![
            proc_(100, 1, gone(), 5),
            proc_(101, 100, gone(), 6),
            proc_(102, 100, gone(), 7),
            proc_(103, 102, gone(), 8), // a grandchild stays in the same tree
            proc_(200, 1, link(b"/srv/app/releases/67", 67, 2), 9),
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
    assert!(f[0].message.contains("master pid 100"), "{}", f[0].message);
    assert!(f[0].message.contains("2 workers"), "{}", f[0].message);
}

#[test]
fn old_release_is_info_within_grace_and_warning_after() {
    let roots = [root(
        b"67",
        vec![release(b"66", 66, 10.0), release(b"67", 67, 20.0)],
    )];
    let p = || vec![proc_(100, 1, link(b"/srv/app/releases/66", 66, 2), 5)];
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
    let roots = [root(b"7 (deleted)", vec![release(b"7 (deleted)", 7, 10.0)])];
    let s = snap(
        vec![proc_(
            100,
            1,
            link(b"/srv/app/releases/7 (deleted)", 7, 2),
            5,
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
            5,
        )],
        SWITCH + 10.0,
    );
    let roots = [root(b"8", vec![release(b"8", 8, 10.0)])];
    let f = run(&roots, &s, 0);
    assert_eq!(f[0].kind, Kind::DeletedRelease);
    assert_eq!(
        f[0].release.as_deref(),
        Some(std::ffi::OsStr::new("7 (deleted)"))
    );
}

fn via_current(pid: i32, start_ticks: u64) -> Process {
    let mut p = proc_(pid, 1, link(b"/", 2, 20), start_ticks);
    p.cmdline = ["php", "/srv/app/current/artisan"].into_iter().collect();
    p
}

#[test]
fn a_path_through_current_is_judged_by_start_time_to_the_tick() {
    let roots = [root(
        b"67",
        vec![release(b"66", 66, 10.0), release(b"67", 67, 20.0)],
    )];
    let switch_ticks = (SWITCH * 100.0) as u64;
    let s = snap(
        vec![
            via_current(100, switch_ticks - 2), // whole tick before the switch: old
            via_current(101, switch_ticks),     // same tick: cannot tell, not flagged
            via_current(102, switch_ticks + 5), // after: current
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
    let roots = [root(
        b"67",
        vec![release(b"66", 66, 500.0), release(b"67", 67, 600.0)],
    )];
    let s = snap(vec![via_current(100, 100 * 100)], SWITCH + 10.0);
    let f = run(&roots, &s, 0);
    assert_eq!(f[0].kind, Kind::DeletedRelease);
    assert_eq!(f[0].release, None);
}

#[test]
fn a_broken_current_link_is_critical_and_hides_no_deleted_release() {
    let mut r = root(b"67", vec![release(b"66", 66, 10.0)]);
    r.current = Current::Dangling {
        target: std::ffi::OsStr::new("releases/67").into(),
    };
    let s = snap(
        vec![
            proc_(100, 1, link(b"/srv/app/releases/66", 66, 2), 5),
            proc_(101, 1, link(b"/srv/app/releases/60 (deleted)", 60, 0), 5),
        ],
        SWITCH + 10.0,
    );
    let f = run(&[r], &s, 0);
    let kinds: Vec<_> = f.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [Kind::BrokenCurrent, Kind::DeletedRelease], "{f:#?}");
}

#[test]
fn unreadable_process_of_the_deploy_user_is_unknown() {
    let roots = [root(b"67", vec![release(b"67", 67, 20.0)])];
    let mut hidden = proc_(100, 1, Err(LinkError::Denied), 5);
    hidden.exe = Err(LinkError::Denied);
    let mut stranger = proc_(101, 1, Err(LinkError::Denied), 5);
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
