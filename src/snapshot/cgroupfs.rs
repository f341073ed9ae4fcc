//! The systemd cgroup of many processes at once, from the cgroup filesystem.
//!
//! Reading `/proc/PID/cgroup` costs two opens, a read and the kernel's css_set lock per
//! process; with thousands of placed processes that was a third of a scan. The cgroup tree of a
//! host holds far fewer directories than processes, and each directory's `cgroup.procs` lists
//! its members: one walk answers every pid at once (what `systemd-cgls` does).
//!
//! The walk must give exactly what [`super::parse::systemd_cgroup`] gives for the same
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

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Where the hierarchies that name systemd units are mounted (at their root).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounts {
    /// The v1 `name=systemd` hierarchy.
    pub v1: Option<PathBuf>,
    /// The v2 (unified) hierarchy.
    pub v2: Option<PathBuf>,
}

/// Find the `name=systemd` and `cgroup2` mounts in `/proc/self/mountinfo` whose mount root is
/// `/` (a bind mount of a subtree would print other paths than `/proc/PID/cgroup`). The first
/// such mount of each wins. Lines are `ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] - FSTYPE
/// SOURCE SUPEROPTS`; ROOT and POINT escape space, tab, newline and `\` as octal `\NNN`.
pub fn mounts(mountinfo: &[u8]) -> Mounts {
    let mut m = Mounts::default();
    for mount in super::parse::mounts(mountinfo) {
        if mount.root != b"/" {
            continue;
        }
        let point = || PathBuf::from(OsString::from_vec(unescape_octal(mount.point)));
        if mount.fstype == b"cgroup2" {
            m.v2.get_or_insert_with(point);
        } else if mount.fstype == b"cgroup"
            && mount
                .superopts
                .split(|&b| b == b',')
                .any(|o| o == b"name=systemd")
        {
            m.v1.get_or_insert_with(point);
        }
    }
    m
}

/// Undo mountinfo's `\NNN` escapes.
fn unescape_octal(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 3 < s.len()
            && s[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = s[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
            if let Ok(b) = u8::try_from(v) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Which hierarchies decide a process's systemd cgroup on this host, from our own
/// `/proc/self/cgroup`: (the v1 `name=systemd` line is there, the v2 `0::` line is there).
pub fn hierarchies(self_cgroup: &[u8]) -> (bool, bool) {
    let mut v1 = false;
    let mut v2 = false;
    for line in self_cgroup.split(|&b| b == b'\n') {
        let mut parts = line.splitn(3, |&b| b == b':');
        let (Some(id), Some(ctrl), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        v1 |= ctrl == b"name=systemd";
        v2 |= id == b"0" && ctrl.is_empty();
    }
    (v1, v2)
}

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
        if read_file(buf, &entries, "cgroup.procs").is_ok() {
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

/// Read a whole file relative to `dir` with plain `read` calls, to end of file.
pub(super) fn read_file(buf: &mut Vec<u8>, dir: impl AsFd, name: &str) -> nix::Result<()> {
    let fd: OwnedFd = openat(dir, name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    super::linux::read_fd(buf, &fd, super::linux::Whole::AtEof)
}

/// The systemd cgroups of the wanted pids, as far as one walk per hierarchy can tell.
pub struct Walked {
    v1: Option<Tree>,
    v2: Option<Tree>,
}

/// What the walk says about one pid: its systemd cgroup as [`super::parse::systemd_cgroup`]
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
        mounts: &Mounts,
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

    /// Same rule as [`super::parse::systemd_cgroup`]: the v1 `name=systemd` path when it says
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

    // From a Debian 12 host with systemd in hybrid mode, and from this test machine.
    const HYBRID: &[u8] = b"\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
36 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn hybrid_host_mounts() {
        let m = mounts(HYBRID);
        assert_eq!(m.v1.as_deref(), Some(Path::new("/sys/fs/cgroup/systemd")));
        assert_eq!(m.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn a_subtree_bind_mount_is_not_used_and_escapes_are_undone() {
        let info = b"\
40 31 0:37 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw
41 31 0:37 / /mnt/my\\040cgroups rw shared:1 master:2 - cgroup2 none rw
";
        let m = mounts(info);
        assert_eq!(m.v2.as_deref(), Some(Path::new("/mnt/my cgroups")));
        assert_eq!(m.v1, None);
    }

    #[test]
    fn garbage_mountinfo_gives_nothing() {
        assert_eq!(mounts(b""), Mounts::default());
        assert_eq!(
            mounts(b"- - - -\n1 2 3\n\xff\xfe - cgroup2"),
            Mounts::default()
        );
        assert_eq!(unescape_octal(b"a\\0"), b"a\\0");
        assert_eq!(unescape_octal(b"\\777x"), b"\\777x");
        assert_eq!(unescape_octal(b"\\134"), b"\\");
    }

    #[test]
    fn which_hierarchies_decide() {
        assert_eq!(
            hierarchies(b"0::/user.slice/user-1000.slice/session-2.scope\n"),
            (false, true)
        );
        assert_eq!(
            hierarchies(b"9:name=systemd:/\n8:pids:/\n0::/\n"),
            (true, true)
        );
        assert_eq!(hierarchies(b"1:name=systemd:/init.scope\n"), (true, false));
        assert_eq!(hierarchies(b""), (false, false));
    }

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
