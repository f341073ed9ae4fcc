//! `/proc/PID/mountinfo`: the mounts a process sees, one per line.
//!
//! A line is `ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] - FSTYPE SOURCE SUPEROPTS`. The
//! non-obvious facts: the optional tags make the fields after them float (the ` - ` separator
//! anchors them), and ROOT and POINT escape space, tab, newline and `\` as octal `\NNN`.

use crate::escape::unescape_octal;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// One line of a mountinfo file (see the module docs), with ROOT and POINT still escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mount<'a> {
    /// `MAJ:MIN` of the filesystem, as printed.
    pub dev: &'a [u8],
    pub root: &'a [u8],
    pub point: &'a [u8],
    pub fstype: &'a [u8],
    pub superopts: &'a [u8],
}

/// The well-formed lines of a mountinfo file (see [`Mount`]); others are skipped.
pub fn mounts(mountinfo: &[u8]) -> impl Iterator<Item = Mount<'_>> {
    mountinfo.split(|&b| b == b'\n').filter_map(|line| {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let dash = fields.iter().position(|f| *f == b"-")?;
        if dash < 6 {
            return None;
        }
        Some(Mount {
            dev: fields[2],
            root: fields[3],
            point: fields[4],
            fstype: fields.get(dash + 1)?,
            superopts: fields.get(dash + 3).copied().unwrap_or_default(),
        })
    })
}

/// `MAJ:MIN` as printed in mountinfo, as the `st_dev` that `stat` gives (`makedev`).
pub fn parse_dev(dev: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(dev).ok()?;
    let (major, minor) = text.split_once(':')?;
    Some(nix::libc::makedev(major.parse().ok()?, minor.parse().ok()?))
}

/// Does the `/proc` mount in `/proc/self/mountinfo` hide other users' processes? True for a
/// super option `hidepid=` other than `0`/`off`, or `subset=pid` (see proc(5)). When /proc
/// is mounted more than once, the last mount listed is the one on top, the one we read.
pub fn proc_hides_pids(mountinfo: &[u8]) -> bool {
    let mut hides = false;
    for m in mounts(mountinfo) {
        if m.point != b"/proc" || m.fstype != b"proc" {
            continue;
        }
        hides = m.superopts.split(|&b| b == b',').any(|o| {
            o == b"subset=pid"
                || o.strip_prefix(b"hidepid=")
                    .is_some_and(|v| v != b"0" && v != b"off")
        });
    }
    hides
}

/// Where the cgroup hierarchies that name systemd units are mounted (at their root).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    /// The v1 `name=systemd` hierarchy.
    pub v1: Option<PathBuf>,
    /// The v2 (unified) hierarchy.
    pub v2: Option<PathBuf>,
}

/// Find the `name=systemd` and `cgroup2` mounts whose mount root is `/` (a bind mount of a
/// subtree would print other paths than `/proc/PID/cgroup`). The first such mount of each
/// wins.
pub fn cgroup_mounts(mountinfo: &[u8]) -> CgroupMounts {
    let mut m = CgroupMounts::default();
    for mount in mounts(mountinfo) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn hidepid_in_mountinfo() {
        let plain = b"22 27 0:21 / /proc rw,relatime - proc proc rw\n";
        assert!(!proc_hides_pids(plain));
        assert!(proc_hides_pids(
            b"22 27 0:21 / /proc rw,relatime shared:5 - proc proc rw,hidepid=2\n"
        ));
        assert!(proc_hides_pids(
            b"22 27 0:21 / /proc rw - proc proc rw,hidepid=invisible\n"
        ));
        assert!(proc_hides_pids(
            b"22 27 0:21 / /proc rw - proc proc rw,subset=pid\n"
        ));
        assert!(!proc_hides_pids(
            b"22 27 0:21 / /proc rw - proc proc rw,hidepid=0\n"
        ));
        // another mount point, or not procfs
        assert!(!proc_hides_pids(
            b"30 27 0:40 / /mnt/proc rw - proc proc rw,hidepid=2\n"
        ));
        assert!(!proc_hides_pids(
            b"31 27 0:41 / /proc rw - tmpfs none rw,hidepid=2\n"
        ));
        assert!(!proc_hides_pids(b"garbage\n\n"));
        // mounted over the first one: the last /proc listed is the one on top
        let stacked = b"22 27 0:21 / /proc rw - proc proc rw\n90 22 0:50 / /proc rw - proc proc rw,hidepid=2\n";
        assert!(proc_hides_pids(stacked));
    }

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
        let m = cgroup_mounts(HYBRID);
        assert_eq!(m.v1.as_deref(), Some(Path::new("/sys/fs/cgroup/systemd")));
        assert_eq!(m.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn a_subtree_bind_mount_is_not_used_and_escapes_are_undone() {
        let info = b"\
40 31 0:37 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw
41 31 0:37 / /mnt/my\\040cgroups rw shared:1 master:2 - cgroup2 none rw
";
        let m = cgroup_mounts(info);
        assert_eq!(m.v2.as_deref(), Some(Path::new("/mnt/my cgroups")));
        assert_eq!(m.v1, None);
    }

    #[test]
    fn garbage_mountinfo_gives_nothing() {
        assert_eq!(cgroup_mounts(b""), CgroupMounts::default());
        assert_eq!(
            cgroup_mounts(b"- - - -\n1 2 3\n\xff\xfe - cgroup2"),
            CgroupMounts::default()
        );
    }
}
