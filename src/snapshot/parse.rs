//! Pure parsers for the `/proc` files that decide a finding. They take bytes and never touch
//! the filesystem, so they are tested on real and hostile samples. See proc(5).
//!
//! The non-obvious fact: field 2 of `/proc/PID/stat` is `(comm)`, and `comm` is chosen by the
//! process (`prctl(PR_SET_NAME)`): it may hold spaces, parentheses and any byte but NUL. The
//! only safe way is to take the text between the first `(` and the *last* `)`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// The fields of `/proc/PID/stat` that relwatch uses; `comm` borrows the line read (most
/// reads of `stat` only want the start time: nothing is copied for them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat<'a> {
    pub pid: i32,
    pub comm: &'a [u8],
    pub state: u8,
    pub ppid: i32,
    /// Kernel `PF_*` flags (field 9).
    pub flags: u64,
    /// Start time in clock ticks since boot (field 22).
    pub start_ticks: u64,
}

/// `PF_KTHREAD` from include/linux/sched.h.
pub const PF_KTHREAD: u64 = 0x0020_0000;

impl Stat<'_> {
    pub fn kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed /proc/PID/stat: {0}")]
pub struct StatError(&'static str);

/// Parse the contents of `/proc/PID/stat`.
pub fn parse_stat(buf: &[u8]) -> Result<Stat<'_>, StatError> {
    let open = memchr::memchr(b'(', buf).ok_or(StatError("no '(' before comm"))?;
    let close = memchr::memrchr(b')', buf).ok_or(StatError("no ')' after comm"))?;
    if close < open {
        return Err(StatError("')' before '('"));
    }
    let pid = std::str::from_utf8(&buf[..open])
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .ok_or(StatError("pid is not a number"))?;
    let comm = &buf[open + 1..close];
    // Fields 3.. separated by single spaces; field 3 is index 0 here.
    let mut fields = Fields(&buf[close + 1..]);
    let mut nth = |skip: usize| fields.nth(skip);
    let state = match nth(0) {
        Some([s]) => *s,
        _ => return Err(StatError("state is not one letter")),
    };
    let ppid = number(nth(0), "ppid")? as i32;
    // fields 5,6,7,8 then 9 (flags)
    let flags = number(nth(4), "flags")?;
    // fields 10..21 then 22 (starttime)
    let start_ticks = number(nth(12), "starttime")?;
    Ok(Stat {
        pid,
        comm,
        state,
        ppid,
        flags,
        start_ticks,
    })
}

/// The fields after `(comm)`: runs of bytes between spaces and newlines (empty ones skipped).
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.0.iter().position(|&b| b != b' ' && b != b'\n')?;
        let rest = &self.0[start..];
        let end = memchr::memchr2(b' ', b'\n', rest).unwrap_or(rest.len());
        self.0 = &rest[end..];
        Some(&rest[..end])
    }
}

fn number(field: Option<&[u8]>, what: &'static str) -> Result<u64, StatError> {
    let f = field.ok_or(StatError(what))?;
    // What the kernel prints: decimal digits. Up to 19 of them cannot overflow a u64 (the
    // i64 parse below refuses those above i64::MAX; no field relwatch reads gets there).
    if !f.is_empty() && f.len() < 20 && f.iter().all(u8::is_ascii_digit) {
        return Ok(f.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')));
    }
    // Anything else as before: ppid may be 0 but is never negative; parse as i64 to be
    // lenient, then refuse negatives.
    std::str::from_utf8(f)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|n| u64::try_from(n).ok())
        .ok_or(StatError(what))
}

/// Split `/proc/PID/cmdline` into arguments (see [`super::Cmdline::parse`], which the reader
/// uses and which keeps them in one buffer).
pub fn split_cmdline(buf: &[u8]) -> Vec<OsString> {
    super::Cmdline::parse(buf)
        .iter()
        .map(std::ffi::OsStr::to_os_string)
        .collect()
}

/// The systemd cgroup path of a process from `/proc/PID/cgroup`: the v1 `name=systemd`
/// line when it says more than `/` (hybrid and legacy hosts track units there), else the v2
/// `0::` line. Lines are `ID:CONTROLLERS:PATH`; PATH may itself hold `:`.
pub fn systemd_cgroup(buf: &[u8]) -> Option<&[u8]> {
    let mut v2 = None;
    for line in buf.split(|&b| b == b'\n') {
        let mut parts = line.splitn(3, |&b| b == b':');
        let (Some(id), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if ctrl == b"name=systemd" && path != b"/" {
            return Some(path);
        }
        if id == b"0" && ctrl.is_empty() {
            v2 = Some(path);
        }
    }
    v2
}

/// What a systemd cgroup path says about the unit a process runs in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnitPath {
    /// The unit as systemd names it (what `systemctl` takes), e.g. `app@srv-shop\x2dnew.service`.
    pub unit: String,
    /// `user@UID.service` was on the path: a user service of UID.
    pub user: Option<u32>,
}

impl UnitPath {
    pub fn is_service(&self) -> bool {
        self.unit.ends_with(".service")
    }

    /// A login session (`session-N.scope`): the process was started by hand.
    pub fn is_session(&self) -> bool {
        self.unit.starts_with("session-") && self.unit.ends_with(".scope")
    }

    /// The unit name with systemd's `\xNN` escapes decoded, for people.
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&unescape_unit(self.unit.as_bytes())).into_owned()
    }
}

/// The innermost `.service` or `.scope` on a cgroup path. Components that systemd's
/// `cg_escape` prefixed with `_` (names that would collide with kernel files) are unprefixed.
pub fn unit_of_cgroup(path: &[u8]) -> Option<UnitPath> {
    let mut unit = None;
    let mut user = None;
    for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        let comp = comp.strip_prefix(b"_").unwrap_or(comp);
        let Ok(comp) = std::str::from_utf8(comp) else {
            continue;
        };
        if let Some(uid) = comp
            .strip_prefix("user@")
            .and_then(|r| r.strip_suffix(".service"))
        {
            user = uid.parse::<u32>().ok();
            unit = Some(comp.to_string());
            continue;
        }
        if comp.ends_with(".service") || comp.ends_with(".scope") {
            unit = Some(comp.to_string());
        }
    }
    unit.map(|unit| UnitPath { unit, user })
}

/// Decode systemd's `\xNN` escapes (`systemd-escape --unescape`).
pub fn unescape_unit(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        if name[i] == b'\\' && name.get(i + 1) == Some(&b'x') {
            if let Some(b) = name
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(name[i]);
        i += 1;
    }
    out
}

/// The values of the named keys in `/proc/PID/environ` (NUL-separated `KEY=VALUE`). Every
/// other value is skipped without being copied: environments hold secrets.
pub fn environ_keys<'k>(buf: &[u8], keys: &[&'k str]) -> Vec<(&'k str, OsString)> {
    let mut out = Vec::new();
    for entry in buf.split(|&b| b == 0) {
        for &key in keys {
            if let Some(value) = entry
                .strip_prefix(key.as_bytes())
                .and_then(|r| r.strip_prefix(b"="))
            {
                if !out.iter().any(|(k, _)| *k == key) {
                    out.push((key, OsString::from_vec(value.to_vec())));
                }
            }
        }
    }
    out
}

/// The file paths in `/proc/PID/maps`: the sixth field of each line, which runs to the end of
/// the line and may hold spaces (and the kernel's ` (deleted)` suffix). Anonymous mappings and
/// pseudo-paths (`[heap]`, `[stack]`, `[vdso]`) are skipped.
pub fn maps_paths(buf: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for line in buf.split(|&b| b == b'\n') {
        // address perms offset dev inode, then spaces, then the path
        let mut rest = line;
        let mut ok = true;
        for _ in 0..5 {
            match rest.iter().position(|&b| b == b' ') {
                Some(i) => rest = &rest[i + 1..],
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if !ok {
            continue;
        }
        let path = rest.trim_ascii_start();
        if path.first() == Some(&b'/') && out.last() != Some(&path) {
            out.push(path);
        }
    }
    out
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

/// One line of `/proc/self/mountinfo`: `ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] - FSTYPE
/// SOURCE SUPEROPTS`, with ROOT and POINT still escaped (space, tab, newline and `\` as octal
/// `\NNN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mount<'a> {
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
            root: fields[3],
            point: fields[4],
            fstype: fields.get(dash + 1)?,
            superopts: fields.get(dash + 3).copied().unwrap_or_default(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &[u8] = b"1234 (php) S 1 1234 1234 0 -1 4194560 2551 0 0 0 3 1 0 0 20 0 1 0 \
123456 230948864 6074 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn real_line() {
        let s = parse_stat(REAL).unwrap();
        assert_eq!(s.pid, 1234);
        assert_eq!(s.comm, b"php");
        assert_eq!(s.state, b'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.flags, 4194560);
        assert_eq!(s.start_ticks, 123456);
        assert!(!s.kernel_thread());
    }

    #[test]
    fn kernel_thread_flag() {
        let line = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0 \
18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
        let s = parse_stat(line).unwrap();
        assert!(s.kernel_thread());
        assert_eq!(s.ppid, 0);
        assert_eq!(s.start_ticks, 5);
    }

    #[test]
    fn comm_with_parens_spaces_and_fake_fields() {
        // A process can name itself ") S 1 2 3 (" to fool a parser that splits on spaces.
        let line = b"77 (a) S 1 2 (b) R 99 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 4242 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, b"a) S 1 2 (b");
        assert_eq!(s.state, b'R');
        assert_eq!(s.ppid, 99);
        assert_eq!(s.start_ticks, 4242);
    }

    #[test]
    fn comm_with_newline_and_invalid_utf8() {
        let line = b"8 (x\n\xff\x1b[31m) Z 7 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, b"x\n\xff\x1b[31m");
        assert_eq!(s.state, b'Z');
        assert_eq!(s.start_ticks, 9);
    }

    #[test]
    fn numbers_take_digits_fast_and_anything_else_as_before() {
        for (field, want) in [
            (&b"0"[..], Some(0)),
            (b"007", Some(7)),
            (b"4242", Some(4242)),
            (b"9223372036854775807", Some(i64::MAX as u64)),
            // Not what the kernel prints, taken as i64's parser always took it:
            (b"+5", Some(5)),
            (b"-0", Some(0)),
            (b"-5", None),
            (b"18446744073709551615", None),
            (b"99999999999999999999", None),
            (b"", None),
            (b"1a", None),
            (b"\xff", None),
        ] {
            assert_eq!(
                number(Some(field), "x").ok(),
                want,
                "{:?}",
                String::from_utf8_lossy(field)
            );
        }
        assert!(number(None, "x").is_err());
    }

    #[test]
    fn truncated_and_garbage_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"12",
            b"12 (x",
            b"12 x) S",
            b") (",
            b"12 (x) S",
            b"12 (x) S 1 2 3",
            b"12 (x) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
            b"abc (x) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9",
            b"12 (x) S -5 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9",
        ] {
            assert!(
                parse_stat(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn cmdline_split() {
        assert_eq!(
            split_cmdline(b"php\0/srv/app/current/artisan\0queue:work\0"),
            ["php", "/srv/app/current/artisan", "queue:work"]
        );
        assert!(split_cmdline(b"").is_empty());
        assert!(split_cmdline(b"\0").is_empty());
        // setproctitle: one string padded with NULs
        assert_eq!(
            split_cmdline(b"gunicorn: master [shop]\0\0\0\0"),
            ["gunicorn: master [shop]"]
        );
        // an empty argument in the middle is kept
        assert_eq!(split_cmdline(b"a\0\0b\0"), ["a", "", "b"]);
        // non-UTF-8 survives
        let args = split_cmdline(b"/srv/r/\xff\xfe/run\0");
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(args[0].as_bytes(), b"/srv/r/\xff\xfe/run");
    }

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
    fn units_from_paths() {
        let u = unit_of_cgroup(b"/system.slice/shop-queue.service").unwrap();
        assert_eq!(u.unit, "shop-queue.service");
        assert!(u.is_service() && !u.is_session());
        assert_eq!(u.user, None);

        let u =
            unit_of_cgroup(b"/user.slice/user-1000.slice/user@1000.service/app.slice/api.service")
                .unwrap();
        assert_eq!(u.unit, "api.service");
        assert_eq!(u.user, Some(1000));

        let u = unit_of_cgroup(b"/user.slice/user-1000.slice/session-3.scope").unwrap();
        assert!(u.is_session());
        assert_eq!(u.user, None);

        // a delegated sub-cgroup below the service still belongs to it
        let u = unit_of_cgroup(b"/system.slice/gunicorn.service/workers/w1").unwrap();
        assert_eq!(u.unit, "gunicorn.service");

        // escaped template instance: systemctl takes the escaped name, people read the other
        let u =
            unit_of_cgroup(br"/system.slice/system-app.slice/app@srv-shop\x2dnew.service").unwrap();
        assert_eq!(u.unit, r"app@srv-shop\x2dnew.service");
        assert_eq!(u.display(), "app@srv-shop-new.service");

        // cg_escape prefixes names that collide with kernel files
        assert_eq!(
            unit_of_cgroup(b"/system.slice/_cpu.service").unwrap().unit,
            "cpu.service"
        );

        assert_eq!(unit_of_cgroup(b"/"), None);
        assert_eq!(unit_of_cgroup(b"/init.scope").unwrap().unit, "init.scope");
    }

    #[test]
    fn unescape_bad_escapes_are_kept() {
        assert_eq!(unescape_unit(br"a\x2db"), b"a-b");
        assert_eq!(unescape_unit(br"a\xzz\x"), br"a\xzz\x");
        assert_eq!(unescape_unit(br"\x2"), br"\x2");
    }

    #[test]
    fn environ_reads_only_named_keys() {
        let env = b"SECRET_KEY=hunter2\0SUPERVISOR_ENABLED=1\0SUPERVISOR_PROCESS_NAME=queue_00\0\
SUPERVISOR_GROUP_NAME=queue\0SUPERVISOR_ENABLEDX=no\0PWD=/srv/app/current\0";
        let got = environ_keys(
            env,
            &[
                "SUPERVISOR_ENABLED",
                "SUPERVISOR_PROCESS_NAME",
                "SUPERVISOR_GROUP_NAME",
            ],
        );
        assert_eq!(
            got,
            [
                ("SUPERVISOR_ENABLED", OsString::from("1")),
                ("SUPERVISOR_PROCESS_NAME", OsString::from("queue_00")),
                ("SUPERVISOR_GROUP_NAME", OsString::from("queue")),
            ]
        );
        assert!(environ_keys(env, &["HOME"]).is_empty());
        // a key with no '=' and a truncated buffer do not confuse it; first value wins
        assert_eq!(
            environ_keys(b"name\0name=a\0name=b", &["name"]),
            [("name", OsString::from("a"))]
        );
    }

    #[test]
    fn maps_lines() {
        let maps = b"55d0c8a00000-55d0c8a02000 r--p 00000000 fd:01 1311 /srv/app/releases/65/bin/worker\n\
55d0c8a02000-55d0c8a06000 r-xp 00002000 fd:01 1311 /srv/app/releases/65/bin/worker\n\
7f0000000000-7f0000001000 r--s 00000000 fd:01 99 /srv/app/releases/7 (deleted)/vendor/my lib.so (deleted)\n\
7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]\n\
7f1000000000-7f1000001000 rw-p 00000000 00:00 0 \n\
garbage\n";
        assert_eq!(
            maps_paths(maps),
            [
                &b"/srv/app/releases/65/bin/worker"[..],
                b"/srv/app/releases/7 (deleted)/vendor/my lib.so (deleted)"
            ]
        );
        assert!(maps_paths(b"").is_empty());
    }

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
}
