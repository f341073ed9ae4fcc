//! Holds: every way a process keeps a release besides its cwd, exe and command line, read for
//! the processes the cheap pass could not place (issue 20).
//!
//! - **mapped files** (`/proc/PID/maps`): a C extension, a `.so` built into the release;
//! - **open files** (`/proc/PID/fd`): a log, an SQLite database, a cache in the release;
//! - **interpreter paths**: `PYTHONPATH`, `RUBYLIB`, `PERL5LIB`, `NODE_PATH`, `BUNDLE_GEMFILE`
//!   of an interpreter process (python, ruby, perl, node, php), compared with the releases
//!   and never shown beyond the release directory they name ([`interp`]);
//! - **other mount namespaces**: a cwd or exe that another namespace reaches through a bind
//!   mount (`docker -v /srv/app/current:/app`, `unshare --mount`), translated to our paths
//!   through its `mountinfo` and believed only by identity ([`mounts`]).
//!
//! Cost decides who is read ([`candidates`]): by default only processes the cheap pass could
//! not place that could run an app's code (the uid that owns a deploy root, a uid already
//! running an app, or a descendant of a placed process); with `--deep`, every process. Maps
//! are streamed and only paths inside a releases directory are kept (see
//! [`crate::snapshot::ProcSource::mapped_files`]). What is found is placed like a cwd or exe
//! ([`crate::attribution::attribute_held`]); each app's `ignore` and `roles` apply to it.

pub mod interp;
pub mod mounts;

use crate::attribution::{self, Attribution, Held, How};
use crate::layout::DeployRoot;
use crate::settings::Settings;
use crate::snapshot::{Link, ProcSource, Process, Snapshot};
use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;

/// How far up the parent chain a process counts as a descendant of a placed one.
const ANCESTRY: usize = 8;

/// Read what the candidates hold and place them by it (see the module docs). `deep`: every
/// process is a candidate.
pub fn look(
    roots: &[DeployRoot],
    snap: &Snapshot,
    attr: &mut Attribution,
    source: &mut dyn ProcSource,
    settings: &Settings,
    deep: bool,
) {
    if roots.is_empty() {
        return;
    }
    let picked = candidates(roots, snap, attr, deep);
    let mut held: Vec<(i32, Vec<Held>)> = Vec::new();
    let interpreters: Vec<i32> = picked
        .iter()
        .filter(|p| interp::is_interpreter(p))
        .map(|p| p.pid)
        .collect();
    let mut paths = interp::paths(roots, &interpreters, source);
    for p in &picked {
        let mut h = files(roots, p.pid, source);
        if let Some(found) = paths.remove(&p.pid) {
            h.extend(found);
        }
        if !h.is_empty() {
            held.push((p.pid, h));
        }
    }
    held.extend(mounts::look(roots, snap, attr, &picked, source));
    if held.is_empty() {
        return;
    }
    held.sort_by_key(|(pid, _)| *pid);
    merge(roots, snap, attr, settings, &held);
}

/// Place the processes `held` names again, apply the settings to them, and put them in
/// `attr` (replacing what the cheap pass said of them).
fn merge(
    roots: &[DeployRoot],
    snap: &Snapshot,
    attr: &mut Attribution,
    settings: &Settings,
    held: &[(i32, Vec<Held>)],
) {
    let mut extra = Attribution {
        placements: attribution::attribute_held(roots, snap, held),
        ..Attribution::default()
    };
    attribution::apply_settings(&mut extra, snap, settings);
    let redone: HashSet<i32> = held.iter().map(|(pid, _)| *pid).collect();
    attr.placements.retain(|pl| !redone.contains(&pl.pid));
    attr.placements.append(&mut extra.placements);
    attr.placements.sort_by_key(|pl| pl.pid);
}

/// The processes worth reading more of: every live user-space process with `deep`; else
/// those not placed yet that could run an app's code.
fn candidates<'s>(
    roots: &[DeployRoot],
    snap: &'s Snapshot,
    attr: &Attribution,
    deep: bool,
) -> Vec<&'s Process> {
    let mut uids: HashSet<u32> = roots.iter().filter_map(|r| r.owner_uid).collect();
    uids.extend(
        attr.placements
            .iter()
            .filter_map(|pl| snap.get(pl.pid).map(|p| p.uid)),
    );
    let placed_above = |p: &Process| {
        let mut pid = p.ppid;
        for _ in 0..ANCESTRY {
            if pid <= 1 {
                return false;
            }
            if attr.get(pid).is_some() {
                return true;
            }
            pid = snap.get(pid).map_or(0, |q| q.ppid);
        }
        false
    };
    snap.processes
        .iter()
        .filter(|p| p.pid != snap.own_pid && !p.kernel_thread && !p.is_zombie() && !p.blind())
        .filter(|p| {
            deep || (attr.get(p.pid).is_none() && (uids.contains(&p.uid) || placed_above(p)))
        })
        .collect()
}

/// `path` lies inside a releases directory of some root (any spelling), lexically.
pub fn in_releases(roots: &[DeployRoot], path: &[u8]) -> bool {
    roots.iter().any(|r| {
        r.releases_spellings.iter().any(|d| {
            path.strip_prefix(d.as_os_str().as_bytes())
                .is_some_and(|rest| rest.len() > 1 && rest.starts_with(b"/"))
        })
    })
}

/// The mapped and open files of `pid` inside a releases directory. A read that fails leaves
/// nothing: the process was placed or not by its cwd and exe, as before.
fn files(roots: &[DeployRoot], pid: i32, source: &mut dyn ProcSource) -> Vec<Held> {
    let wanted = |path: &[u8]| in_releases(roots, path);
    let mut out = Vec::new();
    // issue 17: a maps or fd/ we could not read leaves the process as the cheap pass saw it.
    for path in source.mapped_files(pid, &wanted).unwrap_or_default() {
        out.push(held(How::MappedFile, path.as_bytes()));
    }
    let open = source.open_files(pid).unwrap_or_default();
    for path in open.iter().filter(|f| wanted(f.as_bytes())) {
        out.push(held(How::OpenFile, path.as_bytes()));
    }
    out
}

/// A held file by its text as the kernel printed it. Its link count is not known: the
/// kernel's ` (deleted)` suffix says it, and the release's state is decided by whether the
/// release directory exists, never by the suffix.
fn held(how: How, text: &[u8]) -> Held {
    Held {
        how,
        link: Link {
            target: std::ffi::OsStr::from_bytes(text).into(),
            dev: 0,
            ino: 0,
            nlink: u32::from(!text.ends_with(Link::DELETED)),
        },
        key: None,
        through_mounts: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{current, root};

    #[test]
    fn only_paths_below_a_release_count() {
        let roots = [root("app", b"/srv/app", current(b"1"), &[(b"1", 1)])];
        assert!(in_releases(&roots, b"/srv/app/releases/1/lib/ext.so"));
        assert!(in_releases(&roots, b"/srv/app/releases/1"));
        assert!(!in_releases(&roots, b"/srv/app/releases"));
        assert!(!in_releases(&roots, b"/srv/app/releases/"));
        assert!(!in_releases(&roots, b"/srv/app/releases_old/1"));
        assert!(!in_releases(&roots, b"/srv/app/shared/log"));
    }

    #[test]
    fn a_deleted_file_is_known_by_the_kernels_suffix() {
        let h = held(How::MappedFile, b"/srv/app/releases/1/ext.so (deleted)");
        assert!(h.link.is_deleted());
        assert_eq!(
            &*h.link.path(),
            std::ffi::OsStr::new("/srv/app/releases/1/ext.so")
        );
        assert!(!held(How::OpenFile, b"/srv/app/releases/1/log")
            .link
            .is_deleted());
    }
}
