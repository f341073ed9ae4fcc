//! Containment: a deploy root is what it claims only inside itself.
//!
//! A user who owns a discovered root controls its `current` and `releases` links. Followed
//! blindly, they would make another user's app, `/root` or `/` "this root's releases": the
//! victim's processes placed in the attacker's app, root's directory names listed in reports.
//! So the releases directory a root ends up with is accepted only when
//!
//! - for a root that is a directory: it lies beneath that directory, reached from it without a
//!   symlink (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, when the kernel has it;
//!   otherwise the canonical path's prefix, which has no symlink left by construction);
//! - it is owned by the owner of the root (or of the link, for a root given by its link:
//!   `/var/www/html -> /srv/app/releases/7`) or by root, unless root owns the root itself;
//! - it is neither `/` nor a system directory;
//! - no other root claims it: a releases directory inside another root's (a release that
//!   itself looks like a root), or the same one a root named before already has, is no
//!   releases directory ([`exclusive`]).
//!
//! Anything else leaves the root without releases: `broken-current`, nothing placed in it.
//! Running out of file descriptors while looking is no answer either way: it is an error
//! ([`out_of_fds`]), which ends the run with UNKNOWN and its reason, never a finding.

use super::{Current, DeployRoot};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Directories that are never a releases directory, nor anything beneath them.
const SYSTEM_TREES: &[&str] = &[
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/include",
    "/usr/share",
    "/run",
];

/// Directories that are never a releases directory themselves (apps may live beneath them).
const SYSTEM_DIRS: &[&str] = &[
    "/",
    "/usr",
    "/usr/local",
    "/var",
    "/var/lib",
    "/var/www",
    "/srv",
    "/opt",
    "/home",
    "/tmp",
    "/var/tmp",
    "/mnt",
    "/media",
    "/dev/shm",
];

/// Directories in a system tree where anyone may make directories of their own.
const OPEN_IN_SYSTEM_TREES: &[&str] = &["/dev/shm"];

/// The releases directory and `current` of a root, once confined: a releases directory that
/// escapes the root is none, and a `current` that pointed into it is broken for this root
/// (its link text kept, nothing of the target's contents).
pub fn confine(
    root_dir: Option<&Path>,
    link: &Path,
    releases_dir: Option<PathBuf>,
    current: Current,
) -> std::io::Result<(Option<PathBuf>, Current)> {
    let held = match &releases_dir {
        Some(dir) => holds(root_dir, link, dir)?,
        None => true,
    };
    Ok(match releases_dir {
        Some(_) if !held => {
            let target = std::fs::read_link(link)
                .map(PathBuf::into_os_string)
                .unwrap_or_default();
            let current = match current {
                Current::Missing | Current::NotALink => current,
                _ => Current::OutsideReleases { target },
            };
            (None, current)
        }
        other => (other, current),
    })
}

/// The process is out of file descriptors (`EMFILE`) or the system is (`ENFILE`): whatever
/// was being looked at is not known, and must not be taken for "not there".
pub fn out_of_fds(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    matches!(Errno::from_io_error(e), Some(Errno::MFILE | Errno::NFILE))
}

/// Leave each releases directory to one root: a root whose releases directory lies inside
/// another root's (the inner claimant), or is the one a root before it in `roots` has (the
/// later claimant), loses it, as [`confine`] takes it from a root it escapes:
/// `broken-current`, no release listed, nothing placed. Releases directories are canonical,
/// so the comparison is of paths with no link left in them.
pub fn exclusive(roots: &mut [DeployRoot]) {
    let claims: Vec<Option<PathBuf>> = roots.iter().map(|r| r.releases_dir.clone()).collect();
    let claimed_before = |i: usize, dir: &Path| {
        claims.iter().enumerate().any(|(j, other)| {
            other.as_deref().is_some_and(|other| {
                (dir.starts_with(other) && dir != other) || (j < i && dir == other)
            })
        })
    };
    for (i, root) in roots.iter_mut().enumerate() {
        if !root
            .releases_dir
            .as_deref()
            .is_some_and(|d| claimed_before(i, d))
        {
            continue;
        }
        // A link already broken says how; one that named a release now points outside any.
        if let Current::Ok { release } = &root.current {
            let target = std::fs::read_link(&root.link)
                .map(PathBuf::into_os_string)
                .unwrap_or_else(|_| release.clone());
            root.current = Current::OutsideReleases { target };
        }
        root.releases_dir = None;
        root.releases = Vec::new();
        root.truncated = false;
        root.owner_uid = None;
        root.releases_spellings = Vec::new();
    }
}

/// Whether `dir` (canonical) may be the releases directory of the root at `root_dir` (a
/// directory root) or of the link `link` (a root given by its link). An error only when
/// file descriptors ran out (see [`out_of_fds`]).
pub fn holds(root_dir: Option<&Path>, link: &Path, dir: &Path) -> std::io::Result<bool> {
    if is_system(dir) {
        return Ok(false);
    }
    let claimant = root_dir.unwrap_or(link);
    let Ok(claimant_meta) = std::fs::symlink_metadata(claimant) else {
        return Ok(false);
    };
    let Ok(dir_meta) = std::fs::metadata(dir) else {
        return Ok(false);
    };
    let owner = claimant_meta.uid();
    if owner != 0 && dir_meta.uid() != owner && dir_meta.uid() != 0 {
        return Ok(false);
    }
    match root_dir {
        Some(root) => beneath(root, dir, &dir_meta),
        None => Ok(true),
    }
}

/// Whether `path` is `/`, a system directory, or lies in a system tree.
pub fn is_system(path: &Path) -> bool {
    SYSTEM_DIRS.iter().any(|d| path == Path::new(d))
        || (SYSTEM_TREES.iter().any(|t| path.starts_with(t))
            && !OPEN_IN_SYSTEM_TREES.iter().any(|o| path.starts_with(o)))
}

/// Whether `dir` lies beneath `root` (itself included), reached without a symlink. Out of
/// file descriptors for the opens this takes, it cannot tell: an error, not "no".
fn beneath(root: &Path, dir: &Path, dir_meta: &std::fs::Metadata) -> std::io::Result<bool> {
    let Ok(canon_root) = std::fs::canonicalize(root) else {
        return Ok(false);
    };
    let Ok(rel) = dir.strip_prefix(&canon_root) else {
        return Ok(false);
    };
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Ok(false);
    }
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;
    let exhausted = |e: Errno| std::io::Error::from_raw_os_error(e.raw_os_error());
    let root_fd = match rustix::fs::open(
        &canon_root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e @ (Errno::MFILE | Errno::NFILE)) => return Err(exhausted(e)),
        Err(_) => return Ok(false),
    };
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    match openat2(&root_fd, rel, flags, Mode::empty(), how) {
        Ok(fd) => Ok(rustix::fs::fstat(&fd)
            .is_ok_and(|st| st.st_dev == dir_meta.dev() && st.st_ino == dir_meta.ino())),
        Err(e @ (Errno::MFILE | Errno::NFILE)) => Err(exhausted(e)),
        // No openat2 (old kernel, seccomp): the canonical prefix above is the check.
        Err(Errno::NOSYS | Errno::PERM) => Ok(true),
        Err(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_directories_are_never_releases() {
        for p in [
            "/",
            "/etc",
            "/etc/ssl",
            "/root",
            "/root/app",
            "/var",
            "/usr",
            "/proc/1",
            "/dev/shm",
        ] {
            assert!(is_system(Path::new(p)), "{p}");
        }
        for p in [
            "/srv/app/releases",
            "/var/www/app/releases",
            "/home/u/app/releases",
            "/dev/shm/t/app/releases",
        ] {
            assert!(!is_system(Path::new(p)), "{p}");
        }
        assert!(!is_system(Path::new("/etcetera")));
    }

    /// Inner and later claimants lose the releases directory; siblings whose paths only
    /// share a prefix of bytes (`/srv/app` and `/srv/app2`) do not claim each other.
    #[test]
    fn a_releases_directory_belongs_to_one_root() {
        use crate::testkit::{current, root};
        let app = || root("app", b"/srv/app", current(b"1"), &[(b"1", 1)]);
        let mut inner = root("1", b"/srv/app/releases/1", current(b"a"), &[(b"a", 2)]);
        inner.current = Current::Dangling { target: "x".into() };
        let mut twice = app();
        twice.name = "twice".into();
        let mut roots = vec![
            inner,
            app(),
            root("app2", b"/srv/app2", current(b"1"), &[(b"1", 3)]),
            twice,
        ];
        exclusive(&mut roots);
        let kept: Vec<(&str, bool)> = roots
            .iter()
            .map(|r| (r.name.as_str(), r.releases_dir.is_some()))
            .collect();
        assert_eq!(
            kept,
            [
                ("1", false),
                ("app", true),
                ("app2", true),
                ("twice", false)
            ]
        );
        // The loser has nothing a process could be placed by, and its link reads as broken
        // (as it was, when it already was).
        assert!(matches!(roots[0].current, Current::Dangling { .. }));
        let lost = &roots[3];
        assert!(lost.releases.is_empty() && lost.releases_spellings.is_empty());
        assert!(matches!(lost.current, Current::OutsideReleases { .. }));
        assert_eq!(roots[1].releases.len(), 1);
        exclusive(&mut roots);
        assert_eq!(
            roots[1].releases.len(),
            1,
            "the winner keeps them however often"
        );
    }
}
