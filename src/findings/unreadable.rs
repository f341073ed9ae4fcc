//! `unreadable` (unknown): processes we could not inspect that could be running an app's code.
//! A process could when it runs as root, as the owner of the app's releases, as a uid already
//! running the app's processes, or when its command line names the app's root
//! (`Attribution::unreadable` decides which). relwatch never answers OK over what it could not
//! see: one such process makes the run UNKNOWN, unless something critical already decides it.
//! The finding says how many, as whom, and why; what the run did see is still reported.

use super::{Detail, Finding, Input, Remedy, Severity};
use crate::snapshot::LinkError;

pub(super) fn check(input: &Input, out: &mut Vec<Finding>) {
    let finding = |app, detail| Finding::new(Severity::Unknown, app, detail, Remedy::RunAsRoot);
    if input.snap.hidden_pids {
        // Other users' processes are not even listed: nothing can be counted, so say it once
        // per app rather than answer OK over them.
        out.extend((0..input.roots.len()).map(|app| {
            let detail = Detail::Unreadable {
                hidepid: true,
                uids: Box::default(),
                failed: 0,
            };
            finding(app, detail)
        }));
    }
    for app in 0..input.roots.len() {
        let mut pids: Vec<i32> = input
            .attr
            .unreadable
            .iter()
            .filter(|(_, a)| *a == app)
            .map(|(p, _)| *p)
            .collect();
        if pids.is_empty() {
            continue;
        }
        pids.sort_unstable();
        pids.dedup();
        let procs = || pids.iter().filter_map(|&pid| input.snap.get(pid));
        let mut uids: Vec<u32> = procs().map(|p| p.uid).collect();
        uids.sort_unstable();
        uids.dedup();
        let failed = procs()
            .filter(|p| {
                !p.denied()
                    && [&p.cwd, &p.exe]
                        .iter()
                        .any(|l| l == &&Err(LinkError::Failed))
            })
            .count();
        let detail = Detail::Unreadable {
            hidepid: false,
            uids: uids.into(),
            failed: u32::try_from(failed).unwrap_or(u32::MAX),
        };
        out.push(Finding {
            pids,
            ..finding(app, detail)
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::attribution::attribute;
    use crate::exit::ExitCode;
    use crate::findings::{evaluate, worst, Detail, Finding, Input, Kind};
    use crate::layout::DeployRoot;
    use crate::settings::{AppSettings, Settings};
    use crate::snapshot::{LinkError, Process, Snapshot};
    use crate::testkit::{current, link, process, root, snapshot};

    /// Two apps on release 2 of releases 1 and 2: `shop` (releases owned by uid 1000, inodes 1
    /// and 2) and `blog` (owner unknown, inodes 11 and 12).
    fn roots() -> Vec<DeployRoot> {
        vec![
            DeployRoot {
                owner_uid: Some(1000),
                ..root("shop", b"/srv/shop", current(b"2"), &[(b"1", 1), (b"2", 2)])
            },
            root(
                "blog",
                b"/srv/blog",
                current(b"2"),
                &[(b"1", 11), (b"2", 12)],
            ),
        ]
    }

    /// A process of `uid` running `name` whose cwd and exe fail with `why`.
    fn blind(pid: i32, uid: u32, why: LinkError, cmdline: &[&str]) -> Process {
        Process {
            uid,
            exe: Err(why),
            ..process(pid, 1, Err(why), 5.0, cmdline)
        }
    }

    /// A worker of `uid` on release 2 of `app`.
    fn worker(pid: i32, uid: u32, app: &str) -> Process {
        let cwd = format!("/srv/{app}/releases/2");
        let ino = if app == "shop" { 2 } else { 12 };
        Process {
            uid,
            ..process(pid, 1, link(cwd.as_bytes(), ino, 2), 5.0, &["worker"])
        }
    }

    fn run(roots: &[DeployRoot], snap: &Snapshot) -> Vec<Finding> {
        let attr = attribute(roots, snap);
        evaluate(&Input {
            roots,
            snap,
            attr: &attr,
            owners: &Default::default(),
            settings: &Settings {
                apps: vec![AppSettings::with_grace(Default::default()); roots.len()],
            },
            history: None,
        })
    }

    fn unreadable(f: &[Finding], app: usize) -> Option<&Finding> {
        f.iter()
            .find(|f| f.kind == Kind::Unreadable && f.app == app)
    }

    /// Regression (issue 17): an unprivileged run counted only the non-root owner of the
    /// releases, so root's workers went unseen and the answer was OK.
    #[test]
    fn a_process_of_root_could_run_every_app_and_is_counted_once() {
        let roots = roots();
        let snap = snapshot(
            vec![
                blind(10, 0, LinkError::Denied, &["php-fpm: master process"]),
                blind(11, 4242, LinkError::Denied, &["bash"]),
            ],
            10.0,
        );
        let f = run(&roots, &snap);
        assert_eq!(ExitCode::from_worst(worst(&f)), ExitCode::Unknown, "{f:#?}");
        for app in 0..2 {
            let u = unreadable(&f, app).unwrap_or_else(|| panic!("app {app}: {f:#?}"));
            assert_eq!(u.pids, [10], "another user's shell runs no app: {f:#?}");
            assert!(
                matches!(&u.detail, Detail::Unreadable { uids, failed: 0, .. } if **uids == [0])
            );
        }
        let about = Kind::Unreadable.about();
        assert_eq!(about.tally(&f), 1, "one process, named by two apps");
        let attr = attribute(&roots, &snap);
        assert_eq!(attr.not_inspected(), 2);
    }

    /// A uid that already runs an app's processes could run the rest of them: its process
    /// that we may not inspect counts for that app only.
    #[test]
    fn a_uid_already_running_the_app_could_run_more_of_it() {
        let roots = roots();
        let snap = snapshot(
            vec![
                worker(20, 33, "blog"),
                blind(21, 33, LinkError::Denied, &["worker"]),
            ],
            10.0,
        );
        let f = run(&roots, &snap);
        assert!(unreadable(&f, 0).is_none(), "{f:#?}");
        assert_eq!(unreadable(&f, 1).map(|u| u.pids.clone()), Some(vec![21]));
    }

    /// What it did see is still reported: the deploy user's own worker on an old release.
    #[test]
    fn own_workers_are_still_findings_beside_what_it_could_not_see() {
        let roots = roots();
        let mut old = worker(30, 1000, "shop");
        old.cwd = link(b"/srv/shop/releases/1", 1, 2);
        let snap = snapshot(vec![old, blind(31, 0, LinkError::Denied, &["sshd"])], 10.0);
        let f = run(&roots, &snap);
        assert!(
            f.iter()
                .any(|f| f.kind == Kind::OldRelease && f.pids == [30]),
            "{f:#?}"
        );
        assert_eq!(ExitCode::from_worst(worst(&f)), ExitCode::Unknown);
    }

    /// A link whose stat failed (a FUSE mount gone stale) is counted as not inspected, as
    /// root too, and the words say that root does not help.
    #[test]
    fn a_link_that_could_not_be_followed_is_counted_not_dropped() {
        let roots = roots();
        let snap = snapshot(vec![blind(40, 1000, LinkError::Failed, &["worker"])], 10.0);
        let f = run(&roots, &snap);
        let u = unreadable(&f, 0).unwrap_or_else(|| panic!("{f:#?}"));
        assert!(
            matches!(&u.detail, Detail::Unreadable { failed: 1, .. }),
            "{u:#?}"
        );
        let message = crate::report::words::message(u, &roots[0]).to_string();
        assert!(message.contains("filesystem did not answer"), "{message}");
        let fix = crate::report::words::remedy(u, &roots[0]).to_string();
        assert!(fix.contains("even by root"), "{fix}");
    }
    /// Regression (issue 17): a second look that could not be made (its mount namespace
    /// denied) dropped the process as if it had exited. It is not inspected: counted, UNKNOWN.
    #[test]
    fn a_second_look_that_could_not_be_made_is_not_inspected() {
        use crate::snapshot::ReadError;
        let roots = roots();
        let mut old = worker(50, 1000, "shop");
        old.cwd = link(b"/srv/shop/releases/1", 1, 2);
        let snap = snapshot(vec![old], 10.0);
        let mut attr = attribute(&roots, &snap);
        assert_eq!(attr.placements.len(), 1);
        let mut source = crate::testkit::Told {
            looks: vec![(50, Err(ReadError::Denied))],
            ..crate::testkit::Told::new(&snap)
        };
        let deciding = crate::attribution::second_look_pids(&attr, &snap);
        crate::attribution::verify(&mut attr, &snap, &deciding, &mut source);
        assert!(attr.placements.is_empty());
        assert_eq!(attr.unreadable, [(50, 0)]);
        assert_eq!(attr.raced, 0, "not taken for gone");
    }
}
