//! Discovery of deploy roots when none is named: a depth-limited walk (walkdir) under the
//! usual places, never following symlinked directories, never descending into a root it found.
//!
//! A directory is a deploy root when it holds a `current` symlink and either a `releases/`
//! directory, Deployer's `.dep/`, Capistrano's `revisions.log`, or a `current` whose target
//! lies in a directory beside it. That keeps random `current` links (e.g. in /opt vendor
//! trees) out.
//!
//! Bounded, since any user may create directories below the places: at most
//! [`MAX_ENTRIES`] entries are walked per place and at most [`MAX_ROOTS_PER_PARENT`] deploy
//! roots are taken from one parent directory (the first by name); each cap reached is said
//! once on stderr (the agent's log), naming where. 5,000 tiny roots in one home directory are
//! 100 roots, not 75,000 series and 5,000 inotify watches.

use crate::escape::escape;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use walkdir::WalkDir;

/// Where deploy roots live on most hosts. `/home/*` is expanded to each home directory.
pub const DEFAULT_PLACES: &[&str] = &["/var/www", "/srv", "/opt", "/home/*", "/data"];

/// How deep below a place a deploy root may sit (`/home/deploy/apps/shop` is depth 2 below
/// `/home/deploy`).
pub const MAX_DEPTH: usize = 4;

/// At most this many directory entries are walked below one place.
pub const MAX_ENTRIES: usize = 100_000;

/// At most this many deploy roots are taken from one parent directory.
pub const MAX_ROOTS_PER_PARENT: usize = 100;

/// The caps of one discovery (the constants, or smaller ones in tests).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub entries: usize,
    pub roots_per_parent: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            entries: MAX_ENTRIES,
            roots_per_parent: MAX_ROOTS_PER_PARENT,
        }
    }
}

/// Directories that never hold deploy roots and can be huge.
const SKIP: &[&str] = &[
    "node_modules",
    ".git",
    "vendor",
    "releases",
    "shared",
    "proc",
];

/// Expand `/home/*`-style places (a trailing `/*` only) into directories.
pub fn expand_places(places: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for place in places {
        if place.file_name().is_some_and(|n| n == "*") {
            let Some(parent) = place.parent() else {
                continue;
            };
            let Ok(entries) = std::fs::read_dir(parent) else {
                continue;
            };
            let mut dirs: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            dirs.sort();
            out.extend(dirs);
        } else {
            out.push(place.clone());
        }
    }
    out
}

/// Find deploy roots below `places`. Missing places are skipped silently; a cap reached is
/// said on stderr.
pub fn discover(places: &[PathBuf]) -> Vec<PathBuf> {
    discover_with(places, Caps::default(), &mut |note| {
        eprintln!("relwatch: discovery: {note}");
    })
}

/// [`discover`] with `caps`, each cap reached said once through `note` (escaped text).
pub fn discover_with(places: &[PathBuf], caps: Caps, note: &mut dyn FnMut(String)) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for place in expand_places(places) {
        found.extend(discover_in(&place, caps, note));
    }
    found.dedup();
    found
}

/// The deploy roots below one place, within `caps`.
fn discover_in(place: &Path, caps: Caps, note: &mut dyn FnMut(String)) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = Vec::new();
    let mut per_parent: HashMap<PathBuf, usize> = HashMap::new();
    let mut capped_parents: Vec<PathBuf> = Vec::new();
    let mut walk = WalkDir::new(place)
        .follow_links(false)
        .max_depth(MAX_DEPTH)
        .sort_by_file_name()
        .into_iter();
    let mut entries = 0usize;
    while let Some(entry) = walk.next() {
        entries += 1;
        if entries > caps.entries {
            note(format!(
                "stopped below {} after {} entries (the cap): deploy roots further in are not watched; name them instead",
                escape(place),
                caps.entries
            ));
            break;
        }
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_dir() {
            continue;
        }
        let name = entry.file_name();
        if entry.depth() > 0 && SKIP.iter().any(|s| name == *s) {
            walk.skip_current_dir();
            continue;
        }
        if !is_deploy_root(entry.path()) {
            continue;
        }
        walk.skip_current_dir();
        let parent = entry.path().parent().unwrap_or(place).to_path_buf();
        let n = per_parent.entry(parent.clone()).or_default();
        *n += 1;
        if *n <= caps.roots_per_parent {
            found.push(entry.path().to_path_buf());
        } else if !capped_parents.contains(&parent) {
            note(format!(
                "{} holds more than {} deploy roots: the first {} by name are watched, the rest left out; name the ones that matter instead",
                escape(&parent),
                caps.roots_per_parent,
                caps.roots_per_parent
            ));
            capped_parents.push(parent);
        }
    }
    found
}

/// Does this directory look like a deploy root?
pub fn is_deploy_root(dir: &Path) -> bool {
    let link = dir.join("current");
    let Ok(meta) = std::fs::symlink_metadata(&link) else {
        return false;
    };
    if !meta.file_type().is_symlink() {
        return false;
    }
    let marker = |n: &str| std::fs::symlink_metadata(dir.join(n)).is_ok();
    if marker("releases") || marker(".dep") || marker("revisions.log") {
        return true;
    }
    // Home-grown: current -> builds/5, with builds/ beside current.
    let (Ok(target), Ok(canon_dir)) = (std::fs::canonicalize(&link), std::fs::canonicalize(dir))
    else {
        return false;
    };
    target.parent().and_then(Path::parent) == Some(canon_dir.as_path())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn finds_roots_and_skips_decoys() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        // Deployer-like root at depth 2
        std::fs::create_dir_all(t.join("www/shop/releases/7")).unwrap();
        symlink("releases/7", t.join("www/shop/current")).unwrap();
        // home-grown: current -> builds/3
        std::fs::create_dir_all(t.join("api/builds/3")).unwrap();
        symlink("builds/3", t.join("api/current")).unwrap();
        // decoy: a `current` link to an unrelated place, no markers
        std::fs::create_dir_all(t.join("vendorish/x")).unwrap();
        symlink("/usr", t.join("vendorish/x/current")).unwrap();
        // a symlinked directory pointing at a root must not be followed
        symlink(t.join("www"), t.join("link-to-www")).unwrap();
        // too deep
        std::fs::create_dir_all(t.join("a/b/c/d/e/releases/1")).unwrap();
        symlink("releases/1", t.join("a/b/c/d/e/current")).unwrap();

        let found = discover(&[t.to_path_buf()]);
        assert_eq!(found, vec![t.join("api"), t.join("www/shop")]);
    }

    #[test]
    fn star_expands_to_subdirectories() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("alice")).unwrap();
        std::fs::create_dir_all(tmp.path().join("bob")).unwrap();
        std::fs::write(tmp.path().join("file"), "").unwrap();
        let got = expand_places(&[tmp.path().join("*")]);
        assert_eq!(got, vec![tmp.path().join("alice"), tmp.path().join("bob")]);
    }

    /// Many roots in one directory and a deep tree: the caps hold, and each is said once,
    /// naming where.
    #[test]
    fn discovery_is_capped_in_roots_per_parent_and_entries_and_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        for i in 0..12 {
            let root = t.join(format!("many/app{i:02}"));
            std::fs::create_dir_all(root.join("releases/1")).unwrap();
            symlink("releases/1", root.join("current")).unwrap();
        }
        std::fs::create_dir_all(t.join("one/releases/1")).unwrap();
        symlink("releases/1", t.join("one/current")).unwrap();
        let mut notes = Vec::new();
        let caps = Caps {
            entries: MAX_ENTRIES,
            roots_per_parent: 5,
        };
        let found = discover_with(&[t.to_path_buf()], caps, &mut |n| notes.push(n));
        let many: Vec<PathBuf> = (0..5).map(|i| t.join(format!("many/app{i:02}"))).collect();
        assert_eq!(found, [many, vec![t.join("one")]].concat());
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("holds more than 5 deploy roots"),
            "{notes:?}"
        );
        assert!(
            notes[0].contains(&t.join("many").display().to_string()),
            "{notes:?}"
        );

        let mut notes = Vec::new();
        let caps = Caps {
            entries: 10,
            roots_per_parent: MAX_ROOTS_PER_PARENT,
        };
        let found = discover_with(&[t.to_path_buf()], caps, &mut |n| notes.push(n));
        assert!(found.len() < 12, "{found:?}");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("after 10 entries"), "{notes:?}");
    }
}
