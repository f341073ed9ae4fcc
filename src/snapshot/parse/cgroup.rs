//! `/proc/PID/cgroup`: which cgroup a process is in, one line per hierarchy.
//!
//! Lines are `ID:CONTROLLERS:PATH`: the v2 (unified) hierarchy is `0::PATH`, a v1 hierarchy
//! names its controllers, and systemd's own v1 hierarchy is `name=systemd`. The non-obvious
//! fact: PATH may itself hold `:` (and any byte the unit names in it hold), so a line splits
//! at its first two colons only.

/// One line of a cgroup file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupLine<'a> {
    pub hierarchy_id: &'a [u8],
    pub controllers: &'a [u8],
    pub path: &'a [u8],
}

impl CgroupLine<'_> {
    /// systemd's v1 hierarchy, which hybrid and legacy hosts track units in.
    pub fn is_systemd_v1(&self) -> bool {
        self.controllers == b"name=systemd"
    }

    /// The v2 (unified) hierarchy.
    pub fn is_unified(&self) -> bool {
        self.hierarchy_id == b"0" && self.controllers.is_empty()
    }
}

/// The well-formed lines of a cgroup file; a line without two colons is skipped.
pub fn cgroup_lines(buf: &[u8]) -> impl Iterator<Item = CgroupLine<'_>> {
    buf.split(|&b| b == b'\n').filter_map(|line| {
        let mut parts = line.splitn(3, |&b| b == b':');
        Some(CgroupLine {
            hierarchy_id: parts.next()?,
            controllers: parts.next()?,
            path: parts.next()?,
        })
    })
}

/// The systemd cgroup path of a process: the v1 `name=systemd` line when it says more than
/// `/` (hybrid and legacy hosts track units there), else the v2 `0::` line.
pub fn systemd_cgroup(buf: &[u8]) -> Option<&[u8]> {
    let mut v2 = None;
    for line in cgroup_lines(buf) {
        if line.is_systemd_v1() && line.path != b"/" {
            return Some(line.path);
        }
        if line.is_unified() {
            v2 = Some(line.path);
        }
    }
    v2
}

/// Which hierarchies decide a process's systemd cgroup on this host, from our own
/// `/proc/self/cgroup`: (the v1 `name=systemd` line is there, the v2 `0::` line is there).
pub fn hierarchies(self_cgroup: &[u8]) -> (bool, bool) {
    cgroup_lines(self_cgroup).fold((false, false), |(v1, v2), line| {
        (v1 || line.is_systemd_v1(), v2 || line.is_unified())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_v2_v1_and_hybrid() {
        assert_eq!(
            systemd_cgroup(b"0::/system.slice/shop-queue.service\n"),
            Some(&b"/system.slice/shop-queue.service"[..])
        );
        // hybrid: v1 name=systemd carries the unit, v2 says "/"
        let hybrid =
            b"12:pids:/system.slice/x.service\n1:name=systemd:/system.slice/x.service\n0::/\n";
        assert_eq!(
            systemd_cgroup(hybrid),
            Some(&b"/system.slice/x.service"[..])
        );
        // legacy host without unified line, and a v1 line of "/" falls back to v2
        assert_eq!(
            systemd_cgroup(b"9:name=systemd:/\n0::/system.slice/a.service\n"),
            Some(&b"/system.slice/a.service"[..])
        );
        assert_eq!(systemd_cgroup(b"4:memory:/x\n"), None);
        assert_eq!(systemd_cgroup(b""), None);
        // a path holding ':' is kept whole
        assert_eq!(
            systemd_cgroup(b"0::/a:b.service"),
            Some(&b"/a:b.service"[..])
        );
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
        // A line with one colon is no line at all, whatever it starts with.
        assert_eq!(hierarchies(b"0:\nname=systemd:/\n"), (false, false));
    }
}
