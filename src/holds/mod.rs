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
//! running an app's processes, or a descendant of a placed process); with `--deep`, every
//! process, each reader thread taking a share. Maps are streamed and only paths inside a
//! releases directory are kept (see [`crate::snapshot::ProcSource::held_files`]), except for a
//! process in another mount namespace, whose paths are its own: all are kept and translated
//! ([`mounts`]). What is found is placed like a cwd or exe
//! ([`crate::attribution::attribute_held`]); each app's `ignore` and `roles` apply to it.

pub mod interp;
pub mod mounts;

use crate::attribution::{self, Attribution, Held, HeldBy, How};
use crate::layout::DeployRoot;
use crate::settings::Settings;
use crate::snapshot::{HeldFile, Link, ProcSource, Process, Snapshot};
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
    let mut held: std::collections::BTreeMap<i32, Vec<Held>> = Default::default();
    let interpreters: Vec<i32> = picked
        .iter()
        .filter(|p| interp::is_interpreter(p))
        .map(|p| p.pid)
        .collect();
    let mut paths = interp::paths(roots, &interpreters, source);
    let pids: Vec<i32> = picked.iter().map(|p| p.pid).collect();
    for (pid, mut h) in pids.iter().zip(files(roots, &pids, source)) {
        if let Some(found) = paths.remove(pid) {
            h.extend(found);
        }
        if !h.is_empty() {
            held.insert(*pid, h);
        }
    }
    let elsewhere = mounts::look(roots, snap, attr, &picked, &mut held, source);
    if held.is_empty() && elsewhere.is_empty() {
        return;
    }
    for pid in &elsewhere {
        held.entry(*pid).or_default();
    }
    let held: Vec<HeldBy> = held
        .into_iter()
        .map(|(pid, h)| (pid, elsewhere.contains(&pid), h))
        .collect();
    merge(roots, snap, attr, settings, &held);
}

/// Place the processes `held` names again, apply the settings to them, and put them in
/// `attr` (replacing what the cheap pass said of them).
fn merge(
    roots: &[DeployRoot],
    snap: &Snapshot,
    attr: &mut Attribution,
    settings: &Settings,
    held: &[HeldBy],
) {
    let mut extra = Attribution {
        placements: attribution::attribute_held(roots, snap, held),
        ..Attribution::default()
    };
    attribution::apply_settings(&mut extra, snap, settings);
    let redone: HashSet<i32> = held.iter().map(|(pid, _, _)| *pid).collect();
    // A process in another mount namespace that its path text placed and its mounts do not
    // back is placed nowhere, and counted as before (`scan.other_mount_ns`).
    attr.other_mount_ns += held
        .iter()
        .filter(|(pid, elsewhere, _)| {
            *elsewhere && attr.get(*pid).is_some() && extra.get(*pid).is_none()
        })
        .count();
    attr.placements.retain(|pl| !redone.contains(&pl.pid));
    attr.placements.append(&mut extra.placements);
    attr.placements.sort_by_key(|pl| pl.pid);
}

/// The processes worth reading more of: every live user-space process with `deep`; else
/// those not placed yet that could run an app's code: running as the uid that owns a deploy
/// root or as one already running an app's processes, or below a placed process.
fn candidates<'s>(
    roots: &[DeployRoot],
    snap: &'s Snapshot,
    attr: &Attribution,
    deep: bool,
) -> Vec<&'s Process> {
    // The uids that own a deploy root, and those already running an app's processes (a root
    // owned by root whose workers run as www-data).
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

/// The mapped and open files inside a releases directory of each of `pids`, in order (read on
/// the reader's threads). A read that fails leaves nothing: the process was placed or not by
/// its cwd and exe, as before.
fn files(roots: &[DeployRoot], pids: &[i32], source: &mut dyn ProcSource) -> Vec<Vec<Held>> {
    let wanted = |path: &[u8]| in_releases(roots, path);
    let reads = source.held_files_all(pids, &wanted);
    reads
        .into_iter()
        .map(|read| {
            // issue 17: a maps or fd/ we could not read leaves the process as the cheap pass
            // saw it.
            let read = read.unwrap_or_default();
            let mapped = read.mapped.iter().map(|f| held(How::MappedFile, f));
            let open = read.open.iter().map(|f| held(How::OpenFile, f));
            mapped.chain(open).collect()
        })
        .collect()
}

/// A held file as a link: its text as the kernel printed it, its identity where known. A
/// mapped file's link count is not known: the kernel's ` (deleted)` suffix says it then, and
/// the release's state is decided by whether the release directory exists, never by the
/// suffix. Its path is ours when the process lives in our mount namespace; in another,
/// [`mounts::look`] (and `in-use`) translate and check it.
pub fn file_link(file: &HeldFile) -> Link {
    let text = file.path.as_bytes();
    let suffixed = u32::from(!text.ends_with(Link::DELETED));
    let (dev, ino, nlink) = match file.identity {
        Some((dev, ino, nlink)) => match u32::try_from(dev) {
            Ok(dev) => (dev, ino, nlink.unwrap_or(suffixed)),
            Err(_) => (0, 0, nlink.unwrap_or(suffixed)),
        },
        None => (0, 0, suffixed),
    };
    Link {
        target: std::ffi::OsStr::from_bytes(text).into(),
        dev,
        ino,
        nlink,
    }
}

fn held(how: How, file: &HeldFile) -> Held {
    Held {
        how,
        link: file_link(file),
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

    fn file(path: &str, identity: Option<(u64, u64, Option<u32>)>) -> HeldFile {
        HeldFile {
            path: path.into(),
            identity,
        }
    }

    #[test]
    fn a_deleted_mapping_is_known_by_the_kernels_suffix_and_an_open_file_by_its_links() {
        let h = held(
            How::MappedFile,
            &file("/srv/app/releases/1/ext.so (deleted)", None),
        );
        assert!(h.link.is_deleted());
        assert_eq!(
            &*h.link.path(),
            std::ffi::OsStr::new("/srv/app/releases/1/ext.so")
        );
        let open = |nlink| {
            held(
                How::OpenFile,
                &file("/srv/app/releases/1/log", Some((1, 2, nlink))),
            )
        };
        assert!(!open(Some(1)).link.is_deleted());
        assert!(open(Some(0)).link.is_deleted());
        assert_eq!(open(Some(1)).link.identity(), Some((1, 2)));
    }
}
