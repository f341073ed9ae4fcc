//! Layout: what a deploy root looks like on disk right now.
//!
//! A deploy root is a directory holding a `current` symlink (Capistrano, Deployer, home-grown
//! scripts) or the `current` link itself wherever it lives (`/var/www/html ->
//! /srv/app/releases/7`). The releases are the directories beside the link's target (or the
//! root's `releases/` directory when it has one). Release names are arbitrary bytes: never
//! parse them as numbers.
//!
//! The switch time is the ctime of the `current` link: every deploy tool switches by atomic
//! rename (`ln -s new tmp && mv -T tmp current`), which sets it, and the mtime of the directory
//! holding the link; the earlier of the two (see `switch_time_of`), so that a later `chown -h`
//! of the link does not move it.
//! The switches before it come from the deploy tool's log ([`history`]).
//!
//! This module reads the filesystem but never follows a link out of a release directory:
//! releases are listed with `lstat` semantics, and a symlink inside the releases directory is
//! not a release.

pub mod contain;
pub mod discover;
pub mod history;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Directories that live beside releases in known layouts and are never releases.
pub const NOT_RELEASES: &[&str] = &["shared", "repo", ".dep"];

/// Most entries read from one releases directory; a larger directory is cut and said so.
pub const MAX_RELEASES: usize = 100_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub name: OsString,
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    /// Birth time (statx btime) when the filesystem records it.
    pub created: Option<f64>,
}

/// The state of the `current` link.
#[derive(Debug, Clone, PartialEq)]
pub enum Current {
    /// Points at an existing release.
    Ok { release: OsString },
    /// No `current` link at all.
    Missing,
    /// `current` exists but is not a symlink.
    NotALink,
    /// The target does not exist.
    Dangling { target: OsString },
    /// The target exists but is not a directory.
    NotADirectory { target: OsString },
    /// The target is a directory outside the releases directory.
    OutsideReleases { target: OsString },
}

impl Current {
    pub fn release(&self) -> Option<&OsStr> {
        match self {
            Current::Ok { release } => Some(release),
            _ => None,
        }
    }

    pub fn state_name(&self) -> &'static str {
        match self {
            Current::Ok { .. } => "ok",
            Current::Missing => "missing",
            Current::NotALink => "not-a-link",
            Current::Dangling { .. } => "dangling",
            Current::NotADirectory { .. } => "not-a-directory",
            Current::OutsideReleases { .. } => "outside-releases",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeployRoot {
    /// App name: the deploy root directory's file name.
    pub name: String,
    /// The root as given or discovered (absolute).
    pub root: PathBuf,
    /// The `current` link.
    pub link: PathBuf,
    /// The directory holding the releases, canonical.
    pub releases_dir: Option<PathBuf>,
    pub current: Current,
    /// When `current` was last switched, seconds since the epoch: the link's ctime, or its
    /// directory's mtime when that is more than a second earlier (see `switch_time_of`).
    pub switch_time: Option<f64>,
    /// Existing releases, sorted by name bytes.
    pub releases: Vec<Release>,
    /// True when the releases directory held more than [`MAX_RELEASES`] entries.
    pub truncated: bool,
    /// Owner of the releases directory (the deploy user).
    pub owner_uid: Option<u32>,
    /// Other spellings of the releases directory and the current link that a command line may
    /// use (as given, canonical), for lexical matching.
    pub releases_spellings: Vec<PathBuf>,
    pub link_spellings: Vec<PathBuf>,
    /// The releases directory as configured, relative to the root.
    pub releases_rel: Option<PathBuf>,
    /// The deploy tool's record of its switches (`.dep/releases_log`, `revisions.log`).
    pub log: Option<history::Log>,
    /// The switches this run of relwatch saw, oldest first: each reading of the root that found
    /// `current` somewhere new, with the link's ctime (see [`DeployRoot::reload`]). The agent
    /// reads its roots again on every change, so this is its own record of the switches; a
    /// one-shot `check` sees at most the one that happened during its scan.
    pub seen: Vec<history::Switch>,
}

/// Why a ROOT argument is not a deploy root. These end the run with exit 3.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: {source} (is the deploy root spelled right?)")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: out of file descriptors while reading its releases ({source}): raise the open files limit (`ulimit -n`, or LimitNOFILE= in the unit)")]
    OutOfFds {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a deploy root: it holds no `current` link and no `releases/` directory (give the directory that holds `current`, or the `current` link itself)")]
    NotARoot { path: String },
}

/// The most switches a run remembers per root (see [`DeployRoot::seen`]): weeks of deploys.
pub const MAX_SEEN: usize = 256;

impl DeployRoot {
    /// The release `current` points at.
    pub fn current_release(&self) -> Option<&OsStr> {
        self.current.release()
    }

    pub fn release(&self, name: &OsStr) -> Option<&Release> {
        self.releases
            .binary_search_by(|r| r.name.as_bytes().cmp(name.as_bytes()))
            .ok()
            .map(|i| &self.releases[i])
    }

    /// Load a deploy root from a path given by a user, config or discovery.
    pub fn load(given: &Path) -> Result<DeployRoot, LayoutError> {
        Self::load_with(given, None)
    }

    /// Like [`DeployRoot::load`], with the releases directory named relative to the root.
    pub fn load_with(given: &Path, releases_rel: Option<&Path>) -> Result<DeployRoot, LayoutError> {
        let io = |source| LayoutError::Io {
            path: crate::escape::escape(given),
            source,
        };
        let exhausted = |source| LayoutError::OutOfFds {
            path: crate::escape::escape(given),
            source,
        };
        let given = std::path::absolute(given).map_err(io)?;
        let (root_dir, link) =
            root_and_link(&given)
                .map_err(io)?
                .ok_or_else(|| LayoutError::NotARoot {
                    path: crate::escape::escape(&given),
                })?;

        let link_meta = std::fs::symlink_metadata(&link).ok();
        let declared_releases = root_dir.as_ref().map(|r| match releases_rel {
            Some(rel) => r.join(rel),
            None => r.join("releases"),
        });
        let declared_releases = declared_releases
            .filter(|d| std::fs::metadata(d).is_ok_and(|m| m.is_dir()))
            .and_then(|d| std::fs::canonicalize(d).ok());

        let (current, target_parent) = match &link_meta {
            None => (Current::Missing, None),
            Some(m) if !m.file_type().is_symlink() => (Current::NotALink, None),
            Some(_) => classify_target(&link, declared_releases.as_deref()),
        };
        if root_dir.is_some()
            && matches!(current, Current::Missing | Current::NotALink)
            && declared_releases.is_none()
        {
            return Err(LayoutError::NotARoot {
                path: crate::escape::escape(&given),
            });
        }
        let releases_dir = declared_releases.or(target_parent);
        // A root is what it claims only inside itself (see [`contain`]).
        let (releases_dir, current) =
            contain::confine(root_dir.as_deref(), &link, releases_dir, current)
                .map_err(exhausted)?;
        let switch_time = switch_time_of(link_meta.as_ref(), &link);

        let (releases, truncated) = match &releases_dir {
            Some(dir) => list_releases(dir).map_err(exhausted)?,
            None => (Vec::new(), false),
        };
        let owner_uid = releases_dir
            .as_ref()
            .and_then(|d| std::fs::metadata(d).ok())
            .map(|m| m.uid());

        let name = app_name(root_dir.as_deref(), releases_dir.as_deref(), &link);

        let releases_spellings =
            releases_spellings(root_dir.as_deref(), releases_dir.as_deref(), releases_rel);
        let link_spellings = link_spellings(&link);
        Ok(DeployRoot {
            name,
            root: given,
            link,
            releases_dir,
            current,
            switch_time,
            releases,
            truncated,
            owner_uid,
            releases_spellings,
            link_spellings,
            releases_rel: releases_rel.map(Path::to_path_buf),
            log: root_dir.as_deref().and_then(history::read),
            seen: Vec::new(),
        })
    }

    /// Whether reading this root again could give another `current` or switch time: the link
    /// was replaced since (a deploy switches by rename, so its ctime moves), or the release it
    /// named is gone, or it did not name a release (a dangling target may have appeared). Two
    /// `lstat`s for a healthy root, where a whole [`DeployRoot::reload`] lists the releases and
    /// reads the switch history.
    pub fn may_have_moved(&self) -> bool {
        let link = std::fs::symlink_metadata(&self.link).ok();
        if switch_time_of(link.as_ref(), &self.link) != self.switch_time {
            return true;
        }
        match (&self.current, &self.releases_dir) {
            (Current::Ok { release }, Some(dir)) => {
                !std::fs::metadata(dir.join(release)).is_ok_and(|m| m.is_dir())
            }
            _ => true,
        }
    }

    /// Read the same root again (after `current` moved), keeping its configured name.
    pub fn reload(&self) -> Result<DeployRoot, LayoutError> {
        let mut again = Self::load_with(&self.root, self.releases_rel.as_deref())?;
        again.name.clone_from(&self.name);
        let mut seen = self.seen.clone();
        self.record_into(&mut seen);
        again.record_into(&mut seen);
        again.seen = seen;
        Ok(again)
    }

    /// Append where `current` points now to `seen`, when that is new: another release, or the
    /// same one switched to again (a rollback and forward between two readings). At most
    /// [`MAX_SEEN`] switches are kept, the newest.
    fn record_into(&self, seen: &mut Vec<history::Switch>) {
        let (Some(release), Some(at)) = (self.current_release(), self.switch_time) else {
            return;
        };
        let now = history::Switch {
            release: release.into(),
            at: Some(at),
        };
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        if seen.len() > MAX_SEEN {
            seen.drain(..seen.len() - MAX_SEEN);
        }
    }
}

/// When the `current` link was last replaced, or `None` when it is not a symlink: its ctime,
/// unless the directory holding it was last changed more than [`METADATA_SLACK`] earlier. A
/// switch renames the link into that directory, which moves the directory's mtime too; a
/// `chown -h`, `touch -h` or `setfacl` on the link later moves only the link's ctime, and
/// would otherwise restart every grace period and make processes started after the switch look
/// older than it. Both times are at or after the real switch, so the earlier is the better
/// bound, never one before it.
fn switch_time_of(link: Option<&std::fs::Metadata>, path: &Path) -> Option<f64> {
    let ctime = link
        .filter(|m| m.file_type().is_symlink())
        .map(|m| m.ctime() as f64 + m.ctime_nsec() as f64 / 1e9)?;
    let dir_mtime = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.mtime() as f64 + m.mtime_nsec() as f64 / 1e9);
    Some(match dir_mtime {
        Some(renamed) if ctime - renamed > METADATA_SLACK => renamed,
        _ => ctime,
    })
}

/// How much earlier the directory's mtime must be than the link's ctime to be believed over it
/// (see [`switch_time_of`]): file systems with coarse timestamps round one of them down.
const METADATA_SLACK: f64 = 1.0;

/// Where the root and its `current` link are, for a path given by a user, config or discovery:
/// a directory holding `current` (root and link), a symlink to such a directory (the same), or
/// the `current` link itself, wherever it lives (no root directory). `None`: neither.
fn root_and_link(given: &Path) -> std::io::Result<Option<(Option<PathBuf>, PathBuf)>> {
    let meta = std::fs::symlink_metadata(given)?;
    // A symlink to a directory that itself holds `current` is a root reached through a link;
    // any other symlink is the current link itself.
    let link_is_root =
        meta.file_type().is_symlink() && std::fs::symlink_metadata(given.join("current")).is_err();
    Ok(if link_is_root {
        Some((None, given.to_path_buf()))
    } else if std::fs::metadata(given)?.is_dir() {
        Some((Some(given.to_path_buf()), given.join("current")))
    } else {
        None
    })
}

/// The ways a process may spell the releases directory: its canonical path, and the path
/// through the root as the root was given (when a link lies between them).
fn releases_spellings(
    root_dir: Option<&Path>,
    releases_dir: Option<&Path>,
    releases_rel: Option<&Path>,
) -> Vec<PathBuf> {
    let mut spellings = Vec::new();
    if let Some(dir) = releases_dir {
        spellings.push(dir.to_path_buf());
        if let (Some(root), Some(fname)) = (root_dir, dir.file_name()) {
            let spelled = root.join(releases_rel.unwrap_or(Path::new(fname)));
            if spelled != dir {
                spellings.push(spelled);
            }
        }
    }
    spellings
}

/// The ways a process may spell the `current` link: as given, and through the canonical path
/// of its directory.
fn link_spellings(link: &Path) -> Vec<PathBuf> {
    let mut spellings = vec![link.to_path_buf()];
    if let (Some(parent), Some(fname)) = (link.parent(), link.file_name()) {
        if let Ok(canon) = std::fs::canonicalize(parent) {
            let canon_link = canon.join(fname);
            if canon_link != link {
                spellings.push(canon_link);
            }
        }
    }
    spellings
}

/// Read the link and decide what it points at. Returns the state and, when the target is a
/// directory, its parent (the releases directory for layouts without `releases/`).
fn classify_target(link: &Path, releases_dir: Option<&Path>) -> (Current, Option<PathBuf>) {
    let Ok(target_text) = std::fs::read_link(link) else {
        return (Current::Missing, None);
    };
    let target = target_text.clone().into_os_string();
    let Ok(resolved) = std::fs::canonicalize(link) else {
        return (Current::Dangling { target }, None);
    };
    if !std::fs::metadata(&resolved).is_ok_and(|m| m.is_dir()) {
        return (Current::NotADirectory { target }, None);
    }
    let (Some(parent), Some(release)) = (resolved.parent(), resolved.file_name()) else {
        return (Current::OutsideReleases { target }, None);
    };
    match releases_dir {
        Some(dir) if dir != parent => (Current::OutsideReleases { target }, None),
        _ => (
            Current::Ok {
                release: release.to_os_string(),
            },
            Some(parent.to_path_buf()),
        ),
    }
}

/// The releases in `dir`; an error only when file descriptors ran out (a directory we may not
/// read lists none, as before).
fn list_releases(dir: &Path) -> std::io::Result<(Vec<Release>, bool)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if contain::out_of_fds(&e) => return Err(e),
        Err(_) => return Ok((Vec::new(), false)),
    };
    let mut releases = Vec::new();
    let mut truncated = false;
    for entry in entries.flatten() {
        if releases.len() >= MAX_RELEASES {
            truncated = true;
            break;
        }
        let name = entry.file_name();
        if NOT_RELEASES.iter().any(|n| name.as_bytes() == n.as_bytes()) {
            continue;
        }
        // file_type() does not follow symlinks: a link in releases/ is not a release.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let created = meta.created().ok().and_then(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs_f64())
        });
        releases.push(Release {
            path: entry.path(),
            name,
            dev: meta.dev(),
            ino: meta.ino(),
            created,
        });
    }
    releases.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Ok((releases, truncated))
}

fn app_name(root_dir: Option<&Path>, releases_dir: Option<&Path>, link: &Path) -> String {
    let from = root_dir
        .and_then(Path::file_name)
        .or_else(|| {
            releases_dir
                .and_then(Path::parent)
                .and_then(Path::file_name)
        })
        .or_else(|| link.file_name());
    from.map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".to_string())
}
