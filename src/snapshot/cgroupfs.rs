//! The systemd cgroup of many processes at once, from the cgroup filesystem.
//!
//! Reading `/proc/PID/cgroup` costs two opens, a read and the kernel's css_set lock per
//! process; with thousands of placed processes that was a third of a scan. The cgroup tree of a
//! host holds far fewer directories than processes, and each directory's `cgroup.procs` lists
//! its members: one walk answers every pid at once (what `systemd-cgls` does).
//!
//! The walk must give exactly what [`super::parse::cgroup::systemd_cgroup`] gives for the same
//! process, so it is used only when that is certain:
//! - every hierarchy that decides it (the v1 `name=systemd` line and the v2 `0::` line of our
//!   own `/proc/self/cgroup`) is mounted where we can see it, at the hierarchy's root (mount
//!   root `/`), so a directory's path below the mount is the path `/proc/PID/cgroup` prints;
//! - the walk stays within a budget of directories (a host with more cgroups than wanted
//!   processes is cheaper to read process by process);
//! - a pid the walk did not see (it moved, it started since, it lives in another cgroup
//!   namespace, a threaded cgroup refused its `cgroup.procs`) is read from `/proc/PID/cgroup`.
//!
//! A hierarchy with no cgroup below its root (no systemd: supervisord, runit or a container)
//! has every process at its root; the walk says so without reading the root's `cgroup.procs`,
//! which lists every process on the host.

use super::parse::mountinfo::CgroupMounts;
use super::read::{read_at, ReadUntil};
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The pids in a `cgroup.procs` file (one decimal pid per line; anything else is skipped).
pub fn procs(buf: &[u8]) -> impl Iterator<Item = i32> + '_ {
    buf.split(|&b| b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok()?.parse::<i32>().ok())
}

/// The cgroup path of the wanted pids in one hierarchy. `of[i]` is the index into `paths` of
/// the i-th wanted pid (in the sorted list the walk was given), [`NOT_SEEN`] when the walk did
/// not see it: 4 bytes per process, where a map from pid cost 16 and more.
#[derive(Debug, Default)]
pub struct Tree {
    pub paths: Vec<Vec<u8>>,
    pub of: Vec<u32>,
}

/// A wanted pid the walk did not find.
pub const NOT_SEEN: u32 = u32::MAX;

impl Tree {
    /// The path of the i-th wanted pid.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let at = *self.of.get(i)?;
        self.paths.get(at as usize).map(Vec::as_slice)
    }
}

/// Walk the hierarchy mounted at `mount`, recording where each wanted pid (`wanted` is sorted)
/// is. `None` when the mount cannot be read or it holds more than `budget` directories.
pub fn walk(mount: &Path, wanted: &[i32], budget: usize, buf: &mut Vec<u8>) -> Option<Tree> {
    let top = nix::fcntl::open(
        mount,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut tree = Tree {
        paths: Vec::new(),
        of: vec![NOT_SEEN; wanted.len()],
    };
    // Paths relative to the mount, as `/proc/PID/cgroup` prints them ("/", "/system.slice").
    let mut stack: Vec<Vec<u8>> = vec![b"/".to_vec()];
    let mut visited = 0usize;
    while let Some(path) = stack.pop() {
        visited += 1;
        if visited > budget {
            return None;
        }
        let rel: &[u8] = if path == b"/" { b"." } else { &path[1..] };
        let Ok(dir) = openat(
            &top,
            std::ffi::OsStr::from_bytes(rel),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        ) else {
            // Removed since we listed it: its members are read one by one if wanted.
            continue;
        };
        let Ok(mut entries) = nix::dir::Dir::from_fd(dir) else {
            continue;
        };
        let before = stack.len();
        for e in entries.iter().flatten() {
            if e.file_type() != Some(nix::dir::Type::Directory) {
                continue;
            }
            let name = e.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let mut child = path.clone();
            if child != b"/" {
                child.push(b'/');
            }
            child.extend_from_slice(name);
            stack.push(child);
        }
        if path == b"/" && stack.len() == before {
            // No cgroup below the root (a host without systemd, a container): every process
            // is at the root, as `/proc/PID/cgroup` would say. The root's `cgroup.procs` lists
            // every process on the host, and reading it costs the kernel about a microsecond
            // per process (6 ms for 5,000 in v1, docs/BENCHMARKS.md), to learn nothing.
            tree.paths.push(path);
            tree.of.iter_mut().for_each(|i| *i = 0);
            return Some(tree);
        }
        if read_at(buf, &entries, "cgroup.procs", ReadUntil::Eof).is_ok() {
            let mut index = None;
            for pid in procs(buf) {
                if let Ok(at) = wanted.binary_search(&pid) {
                    let i = *index.get_or_insert_with(|| {
                        tree.paths.push(path.clone());
                        u32::try_from(tree.paths.len() - 1).unwrap_or(NOT_SEEN)
                    });
                    tree.of[at] = i;
                }
            }
        }
    }
    Some(tree)
}

/// The systemd cgroups of the wanted pids, as far as one walk per hierarchy can tell.
pub struct Walked {
    v1: Option<Tree>,
    v2: Option<Tree>,
}

/// What the walk says about one pid: its systemd cgroup as [`super::parse::cgroup::systemd_cgroup`]
/// would read it, or that it does not know (read `/proc/PID/cgroup`).
#[derive(Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    Path(Option<&'a [u8]>),
    Unknown,
}

impl Walked {
    /// Walk what decides the systemd cgroup on this host, or `None` when that cannot give the
    /// same answers as `/proc/PID/cgroup` (see the module docs).
    pub fn new(
        mounts: &CgroupMounts,
        uses: (bool, bool),
        wanted: &[i32],
        budget: usize,
        buf: &mut Vec<u8>,
    ) -> Option<Walked> {
        let (uses_v1, uses_v2) = uses;
        let v1 = match (uses_v1, &mounts.v1) {
            (false, _) => None,
            (true, Some(m)) => Some(walk(m, wanted, budget, buf)?),
            (true, None) => return None,
        };
        let v2 = match (uses_v2, &mounts.v2) {
            (false, _) => None,
            (true, Some(m)) => Some(walk(m, wanted, budget, buf)?),
            (true, None) => return None,
        };
        Some(Walked { v1, v2 })
    }

    /// Same rule as [`super::parse::cgroup::systemd_cgroup`]: the v1 `name=systemd` path when it says
    /// more than `/`, else the v2 path. `i` is the pid's place in the sorted wanted list.
    pub fn get(&self, i: usize) -> Answer<'_> {
        if let Some(v1) = &self.v1 {
            match v1.get(i) {
                None => return Answer::Unknown,
                Some(p) if p != b"/" => return Answer::Path(Some(p)),
                Some(_) => {}
            }
        }
        match &self.v2 {
            Some(v2) => match v2.get(i) {
                Some(p) => Answer::Path(Some(p)),
                None => Answer::Unknown,
            },
            // No `0::` line in /proc/self/cgroup: none in any process's either.
            None => Answer::Path(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procs_skips_what_is_not_a_pid() {
        let v: Vec<i32> = procs(b"1\n22\n\nx\n333\n").collect();
        assert_eq!(v, vec![1, 22, 333]);
    }

    /// A stand-in for a cgroup mount: `dirs` below `root`, each with a `cgroup.procs` listing
    /// its pids (`None`: no `cgroup.procs` at all).
    fn fake_mount(root: &Path, dirs: &[(&str, Option<&str>)]) {
        for (dir, procs) in dirs {
            let dir = root.join(dir);
            let made = std::fs::create_dir_all(&dir).and_then(|()| match procs {
                Some(procs) => std::fs::write(dir.join("cgroup.procs"), procs),
                None => Ok(()),
            });
            if let Err(e) = made {
                panic!("cannot make {}: {e}", dir.display());
            }
        }
    }

    fn walked(root: &Path, wanted: &[i32]) -> Vec<Option<String>> {
        let Some(tree) = walk(root, wanted, 100, &mut Vec::new()) else {
            panic!("no walk of {}", root.display());
        };
        (0..wanted.len())
            .map(|i| tree.get(i).map(|p| String::from_utf8_lossy(p).into_owned()))
            .collect()
    }

    #[test]
    fn a_hierarchy_with_nothing_below_its_root_puts_everyone_there_unread() {
        let Ok(tmp) = tempfile::tempdir() else {
            panic!("no temp dir");
        };
        // No `cgroup.procs` at all: had the walk read the root's, it would know nobody.
        fake_mount(tmp.path(), &[(".", None)]);
        let root = Some("/".to_string());
        assert_eq!(
            walked(tmp.path(), &[1, 7, 4242]),
            [root.clone(), root.clone(), root]
        );
    }

    #[test]
    fn a_hierarchy_with_cgroups_below_its_root_is_read_everywhere() {
        let Ok(tmp) = tempfile::tempdir() else {
            panic!("no temp dir");
        };
        fake_mount(
            tmp.path(),
            &[
                (".", Some("1\n")),
                ("system.slice", Some("")),
                ("system.slice/app.service", Some("7\n9\n")),
            ],
        );
        assert_eq!(
            walked(tmp.path(), &[1, 7, 4242]),
            [
                Some("/".to_string()),
                Some("/system.slice/app.service".to_string()),
                // Listed nowhere: read from /proc/PID/cgroup instead.
                None,
            ]
        );
    }

    /// A walked tree over wanted pids 0, 1, 2...: `Some(path)` where the walk saw it.
    fn tree(entries: &[Option<&str>]) -> Tree {
        let mut t = Tree::default();
        for e in entries {
            match e {
                Some(path) => {
                    t.paths.push(path.as_bytes().to_vec());
                    t.of.push(t.paths.len() as u32 - 1);
                }
                None => t.of.push(NOT_SEEN),
            }
        }
        t
    }

    #[test]
    fn answers_follow_the_proc_rule() {
        let w = Walked {
            v1: Some(tree(&[Some("/system.slice/a.service"), Some("/"), None])),
            v2: Some(tree(&[Some("/"), Some("/system.slice/b.service"), None])),
        };
        assert_eq!(
            w.get(0),
            Answer::Path(Some(&b"/system.slice/a.service"[..]))
        );
        assert_eq!(
            w.get(1),
            Answer::Path(Some(&b"/system.slice/b.service"[..]))
        );
        assert_eq!(w.get(2), Answer::Unknown);
        assert_eq!(w.get(3), Answer::Unknown);
        let v2_only = Walked {
            v1: None,
            v2: Some(tree(&[Some("/system.slice/a.service"), None])),
        };
        assert_eq!(
            v2_only.get(0),
            Answer::Path(Some(&b"/system.slice/a.service"[..]))
        );
        assert_eq!(v2_only.get(1), Answer::Unknown);
        let v1_only = Walked {
            v1: Some(tree(&[Some("/"), None])),
            v2: None,
        };
        assert_eq!(v1_only.get(0), Answer::Path(None));
        assert_eq!(v1_only.get(1), Answer::Unknown);
        let none = Walked { v1: None, v2: None };
        assert_eq!(none.get(0), Answer::Path(None));
    }
}
