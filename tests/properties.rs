//! Properties of the pure parsers and of the escaping, over hostile input.
//!
//! Everything here takes bytes that a local user controls (a process picks its `comm`, its
//! command line, its environment; a cgroup path carries unit names built from them) and must
//! never panic, never mis-place the fields after an attacker-chosen `comm`, never return an
//! environment value that was not asked for, and never let a dangerous character through the
//! escaping while keeping it reversible.
//!
//! Failing cases are printed minimized by proptest; they are not written to a regression file
//! (`failure_persistence: None`) so a failing run never leaves files in the source tree.

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use relwatch::escape::{
    escape, escape_bytes, escape_cmdline, is_dangerous, unescape, unescape_systemd,
};
use relwatch::owner::unit::unit_of_cgroup;
use relwatch::snapshot::parse::cgroup::systemd_cgroup;
use relwatch::snapshot::parse::cmdline::split_cmdline;
use relwatch::snapshot::parse::environ::environ_keys;
use relwatch::snapshot::parse::maps::maps_paths;
use relwatch::snapshot::parse::stat::parse_stat;
use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// `cases` per property, or `PROPTEST_CASES` from the environment for a longer run
/// (`PROPTEST_CASES=100000 cargo test --release --test properties`).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Bytes that matter to the parsers and to a terminal.
const SPECIAL: &[u8] = &[
    b'(', b')', b' ', b'\n', b'\0', b'\t', b'\r', 0x1b, 0x7f, 0xff, 0xfe, 0xc0, 0x80, 0xe2, b'\\',
    b'x', b':', b'/', b'=', b'_', b'@', b'.', b'-', b'0', b'9',
];

/// One byte: a special one a quarter of the time, else any byte. (One `u16` per byte keeps
/// generation cheap in debug builds.)
fn hostile_byte() -> impl Strategy<Value = u8> {
    any::<u16>().prop_map(|x| {
        if x & 3 == 0 {
            SPECIAL[usize::from(x >> 2) % SPECIAL.len()]
        } else {
            (x >> 8) as u8
        }
    })
}

fn hostile_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(hostile_byte(), 0..max)
}

// ---------------------------------------------------------------------------------------------
// /proc/PID/stat
// ---------------------------------------------------------------------------------------------

/// The numeric fields of a stat line that the parser reads, plus filler for the others.
#[derive(Debug, Clone)]
struct StatFields {
    pid: i32,
    state: u8,
    ppid: i32,
    flags: u64,
    start_ticks: u64,
    /// Fields 5..8 (pgrp, session, tty_nr, tpgid: the last may be -1), 10..21 and 23..52.
    filler: Vec<i64>,
}

fn stat_fields() -> impl Strategy<Value = StatFields> {
    (
        1..=i32::MAX,
        prop::sample::select(b"RSDZTtWXxKPI".to_vec()),
        0..=i32::MAX,
        any::<u64>().prop_map(|f| f & 0xffff_ffff),
        any::<u64>().prop_map(|t| t >> 1), // within i64, as the kernel prints it
        prop::collection::vec(-1i64..=i64::MAX, 46),
    )
        .prop_map(
            |(pid, state, ppid, flags, start_ticks, filler)| StatFields {
                pid,
                state,
                ppid,
                flags,
                start_ticks,
                filler,
            },
        )
}

/// A stat line the way the kernel prints it (proc(5)), around an arbitrary `comm`.
fn stat_line(f: &StatFields, comm: &[u8], trailing_newline: bool) -> Vec<u8> {
    let mut line = format!("{} (", f.pid).into_bytes();
    line.extend_from_slice(comm);
    line.extend_from_slice(b") ");
    let mut fields: Vec<String> = vec![(f.state as char).to_string(), f.ppid.to_string()];
    fields.extend(f.filler[0..4].iter().map(i64::to_string)); // 5..8
    fields.push(f.flags.to_string()); // 9
    fields.extend(f.filler[4..16].iter().map(i64::to_string)); // 10..21
    fields.push(f.start_ticks.to_string()); // 22
    fields.extend(f.filler[16..46].iter().map(i64::to_string)); // 23..52
    line.extend_from_slice(fields.join(" ").as_bytes());
    if trailing_newline {
        line.push(b'\n');
    }
    line
}

/// A `comm` an attacker would choose: parentheses, fake fields, newlines, invalid UTF-8.
fn hostile_comm() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        hostile_bytes(64),
        // Text that looks like the rest of a stat line.
        (stat_fields(), hostile_bytes(8)).prop_map(|(f, tail)| {
            let mut c = b"x) ".to_vec();
            c.extend(stat_line(&f, b"y", false).into_iter().skip(1));
            c.extend(tail);
            c
        }),
        prop::sample::select(vec![
            b")".to_vec(),
            b"(".to_vec(),
            b") (".to_vec(),
            b"))".to_vec(),
            b"a) S 1 2 (b".to_vec(),
            b"\n".to_vec(),
            b"\xff\xfe".to_vec(),
            b"".to_vec(),
            b" ".to_vec(),
        ]),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    /// Whatever `comm` a process chose, the fields after it are read right.
    #[test]
    fn stat_fields_after_any_comm_parse_right(
        f in stat_fields(),
        comm in hostile_comm(),
        newline in any::<bool>(),
    ) {
        let line = stat_line(&f, &comm, newline);
        let s = parse_stat(&line).map_err(|e| {
            TestCaseError::fail(format!("{e} on {:?}", String::from_utf8_lossy(&line)))
        })?;
        prop_assert_eq!(s.pid, f.pid);
        prop_assert_eq!(&s.comm, &comm);
        prop_assert_eq!(s.state, f.state);
        prop_assert_eq!(s.ppid, f.ppid);
        prop_assert_eq!(s.flags, f.flags);
        prop_assert_eq!(s.start_ticks, f.start_ticks);
    }

    /// Any bytes at all: an error or a result, never a panic; a result's `comm` is what lies
    /// between the first `(` and the last `)`.
    #[test]
    fn stat_byte_soup_never_panics(buf in hostile_bytes(256)) {
        if let Ok(s) = parse_stat(&buf) {
            let open = buf.iter().position(|&b| b == b'(').unwrap();
            let close = buf.iter().rposition(|&b| b == b')').unwrap();
            prop_assert_eq!(s.comm, &buf[open + 1..close]);
        }
    }

    /// A valid line cut short or with bytes flipped: never a panic.
    #[test]
    fn stat_truncated_or_corrupted_never_panics(
        f in stat_fields(),
        comm in hostile_comm(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), hostile_byte()), 0..4),
    ) {
        let mut line = stat_line(&f, &comm, true);
        for (at, b) in flips {
            let i = at.index(line.len());
            line[i] = b;
        }
        let cut = cut.index(line.len() + 1);
        let _ = parse_stat(&line[..cut]);
        let _ = parse_stat(&line);
    }
}

// ---------------------------------------------------------------------------------------------
// /proc/PID/cmdline
// ---------------------------------------------------------------------------------------------

fn join_nul(args: &[OsString]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(0);
        }
        out.extend_from_slice(a.as_bytes());
    }
    out
}

proptest! {
    #![proptest_config(config(1024))]

    /// Any bytes: the arguments hold no NUL, the last is never empty, and joined with NUL
    /// they give back the input without its trailing NULs (nothing is lost or invented).
    #[test]
    fn cmdline_split_is_lossless(buf in hostile_bytes(256)) {
        let args = split_cmdline(&buf);
        prop_assert!(args.iter().all(|a| !a.as_bytes().contains(&0)));
        prop_assert!(args.last().is_none_or(|a| !a.is_empty()));
        let mut trimmed = &buf[..];
        while let Some(rest) = trimmed.strip_suffix(b"\0") {
            trimmed = rest;
        }
        prop_assert_eq!(join_nul(&args), trimmed.to_vec());
    }

    /// Arguments written the way execve leaves them (each NUL-terminated), possibly padded
    /// with NULs by setproctitle, come back as they were.
    #[test]
    fn cmdline_round_trips(
        args in prop::collection::vec(
            prop::collection::vec(hostile_byte().prop_filter("no NUL", |&b| b != 0), 0..24),
            0..12,
        ),
        last in prop::collection::vec(hostile_byte().prop_filter("no NUL", |&b| b != 0), 1..24),
        padding in 0usize..16,
    ) {
        let mut all = args;
        all.push(last);
        let mut buf = Vec::new();
        for a in &all {
            buf.extend_from_slice(a);
            buf.push(0);
        }
        buf.extend(std::iter::repeat_n(0, padding));
        let got: Vec<Vec<u8>> = split_cmdline(&buf).into_iter().map(OsString::into_vec).collect();
        prop_assert_eq!(got, all);
    }
}

// ---------------------------------------------------------------------------------------------
// /proc/PID/cgroup and unit names
// ---------------------------------------------------------------------------------------------

/// A cgroup path component: unit-like names, escapes, and noise.
fn cgroup_component() -> impl Strategy<Value = Vec<u8>> {
    let word = prop::collection::vec(prop::sample::select(b"abcz09-_.@\\x:".to_vec()), 0..12);
    prop_oneof![
        2 => (word.clone(), prop::sample::select(vec![".service", ".scope", ".slice", ""]))
            .prop_map(|(w, s)| [w, s.as_bytes().to_vec()].concat()),
        1 => any::<u32>().prop_map(|u| format!("user@{u}.service").into_bytes()),
        1 => prop::sample::select(vec![
            b"user@.service".to_vec(),
            b"user@-1.service".to_vec(),
            b"user@99999999999.service".to_vec(),
            b"_cpu.service".to_vec(),
            b"_".to_vec(),
            b".service".to_vec(),
            b"session-3.scope".to_vec(),
            br"app@srv-shop\x2dnew.service".to_vec(),
            b"\xff\xfe.service".to_vec(),
        ]),
        1 => hostile_bytes(16).prop_map(|b| b.into_iter().filter(|&c| c != b'/' && c != b'\n').collect()),
    ]
}

fn cgroup_path() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(cgroup_component(), 0..6).prop_map(|comps| {
        let mut p = Vec::new();
        for c in comps {
            p.push(b'/');
            p.extend(c);
        }
        if p.is_empty() {
            p.push(b'/');
        }
        p
    })
}

/// One line of `/proc/PID/cgroup`: v2, v1 `name=systemd`, another v1 controller, or noise.
fn cgroup_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        cgroup_path().prop_map(|p| [b"0::".to_vec(), p].concat()),
        (1u32..20, cgroup_path()).prop_map(|(id, p)| [
            format!("{id}:name=systemd:").into_bytes(),
            p
        ]
        .concat()),
        (
            1u32..20,
            prop::sample::select(vec!["memory", "pids", "cpu,cpuacct", ""]),
            cgroup_path()
        )
            .prop_map(|(id, c, p)| [format!("{id}:{c}:").into_bytes(), p].concat()),
        hostile_bytes(40).prop_map(|b| b.into_iter().filter(|&c| c != b'\n').collect()),
    ]
}

/// What `systemd_cgroup` must return, from proc(7) and systemd's rules: the first v1
/// `name=systemd` path that says more than `/`, else the last v2 (`0::`) path.
fn model_systemd_cgroup(lines: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut v2 = None;
    for line in lines {
        let mut parts = line.splitn(3, |&b| b == b':');
        let (Some(id), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if ctrl == b"name=systemd" && path != b"/" {
            return Some(path.to_vec());
        }
        if id == b"0" && ctrl.is_empty() {
            v2 = Some(path.to_vec());
        }
    }
    v2
}

/// The model of a cgroup component that names a systemd unit: a `.service` or `.scope` whose
/// name systemd could have given (at most 255 bytes of `[A-Za-z0-9:_.\\@-]`, a name before
/// the suffix, no leading `-`, at most one `@`).
fn names_a_unit(comp: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(comp) else {
        return false;
    };
    let stem = s
        .strip_suffix(".service")
        .or_else(|| s.strip_suffix(".scope"));
    stem.is_some_and(|stem| !stem.is_empty())
        && s.len() <= 255
        && !s.starts_with('-')
        && s.matches('@').count() <= 1
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.\\@-".contains(&b))
}

proptest! {
    #![proptest_config(config(1024))]

    /// Any bytes: never a panic, and what comes back is one line's path (no newline in it).
    #[test]
    fn cgroup_byte_soup_never_panics(buf in hostile_bytes(256)) {
        if let Some(path) = systemd_cgroup(&buf) {
            prop_assert!(!path.contains(&b'\n'));
            let lo = buf.as_ptr() as usize;
            let p = path.as_ptr() as usize;
            prop_assert!(p >= lo && p + path.len() <= lo + buf.len(), "not a slice of the input");
        }
        if let Some(u) = unit_of_cgroup(&buf) {
            prop_assert!(u.is_service() || u.unit.ends_with(".scope"));
            let _ = u.display();
            let _ = u.is_session();
        }
        let _ = unescape_systemd(&buf);
    }

    /// A well-formed cgroup file: the v1 `name=systemd` line wins when it says more than `/`,
    /// else the v2 line; the unit is a component of that path and a `user@UID.service`
    /// component is the only way to get a user.
    #[test]
    fn cgroup_file_picks_the_systemd_path(
        lines in prop::collection::vec(cgroup_line(), 0..8),
        trailing_newline in any::<bool>(),
    ) {
        let mut buf = lines.join(&b'\n');
        if trailing_newline {
            buf.push(b'\n');
        }
        let got = systemd_cgroup(&buf);
        prop_assert_eq!(got.map(<[u8]>::to_vec), model_systemd_cgroup(&lines));
        if let Some(path) = got {
            let comps: Vec<&[u8]> = path
                .split(|&b| b == b'/')
                .filter(|c| !c.is_empty())
                .map(|c| c.strip_prefix(b"_").unwrap_or(c))
                .collect();
            match unit_of_cgroup(path) {
                Some(u) => {
                    prop_assert!(!u.unit.contains('/'));
                    prop_assert!(u.is_service() || u.unit.ends_with(".scope"));
                    // The innermost unit: the last component that names one.
                    let innermost = comps.iter().rev().find(|c| names_a_unit(c));
                    prop_assert_eq!(
                        innermost.copied(),
                        Some(u.unit.as_bytes()),
                        "unit {:?} is not the innermost of {:?}", u.unit, String::from_utf8_lossy(path)
                    );
                    if let Some(uid) = u.user {
                        let user = format!("user@{uid}.service");
                        prop_assert!(comps.contains(&user.as_bytes()));
                    }
                }
                None => {
                    let names_unit = comps.iter().any(|c| names_a_unit(c));
                    prop_assert!(!names_unit, "no unit found in {:?}", String::from_utf8_lossy(path));
                }
            }
        }
    }

    /// systemd's `\xNN` unescaping never grows a name, leaves text without a backslash alone
    /// and undoes `systemd-escape` of any byte.
    #[test]
    fn unit_unescape_is_sane(name in hostile_bytes(128), raw in hostile_bytes(32)) {
        let out = unescape_systemd(&name);
        prop_assert!(out.len() <= name.len());
        if !name.contains(&b'\\') {
            prop_assert_eq!(&out, &name);
        }
        let escaped: Vec<u8> = raw.iter().flat_map(|b| format!("\\x{b:02x}").into_bytes()).collect();
        prop_assert_eq!(unescape_systemd(&escaped), raw);
    }
}

// ---------------------------------------------------------------------------------------------
// /proc/PID/environ
// ---------------------------------------------------------------------------------------------

/// Keys relwatch asks for, and keys that share a prefix with them or look like them.
const ENV_POOL: &[&str] = &[
    "SUPERVISOR_ENABLED",
    "SUPERVISOR_PROCESS_NAME",
    "SUPERVISOR_GROUP_NAME",
    "pm_id",
    "name",
    "SUPERVISOR",
    "SUPERVISOR_ENABLEDX",
    "SUPERVISOR_ENABLED_",
    "NAME",
    "names",
    "pm",
    "pm_id2",
    "SECRET_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "PWD",
    "",
];

fn env_entry() -> impl Strategy<Value = Vec<u8>> {
    fn value() -> impl Strategy<Value = Vec<u8>> {
        hostile_bytes(24).prop_map(|v| v.into_iter().filter(|&b| b != 0).collect())
    }
    prop_oneof![
        4 => (prop::sample::select(ENV_POOL), value(), any::<bool>()).prop_map(
            |(k, v, eq)| {
                let mut e = k.as_bytes().to_vec();
                if eq {
                    e.push(b'=');
                }
                e.extend::<Vec<u8>>(v);
                e
            }
        ),
        1 => value(),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    /// Only asked-for keys come back, each at most once, with the value of the first entry
    /// that is exactly `KEY=`: a secret in another key never leaks, and `KEYX=` or `KEY`
    /// without `=` is not `KEY`.
    #[test]
    fn environ_returns_only_asked_keys(
        entries in prop::collection::vec(env_entry(), 0..16),
        asked in prop::sample::subsequence(ENV_POOL[..8].to_vec(), 0..=8),
        trailing_nul in any::<bool>(),
    ) {
        let mut buf = entries.join(&0u8);
        if trailing_nul {
            buf.push(0);
        }
        let asked: Vec<&str> = asked.into_iter().filter(|k| !k.is_empty()).collect();
        let got = environ_keys(&buf, &asked);

        let mut seen = std::collections::HashSet::new();
        for (k, _) in &got {
            prop_assert!(asked.contains(k), "returned key {:?} was not asked for", k);
            prop_assert!(seen.insert(*k), "key {:?} returned twice", k);
        }
        // The model: the first entry `KEY=VALUE` for every asked key that has one.
        let mut want: HashMap<&str, Vec<u8>> = HashMap::new();
        for e in buf.split(|&b| b == 0) {
            for &k in &asked {
                if let Some(v) = e.strip_prefix(k.as_bytes()).and_then(|r| r.strip_prefix(b"=")) {
                    want.entry(k).or_insert_with(|| v.to_vec());
                }
            }
        }
        let got: HashMap<&str, Vec<u8>> =
            got.into_iter().map(|(k, v)| (k, v.into_vec())).collect();
        prop_assert_eq!(got, want);
    }

    /// Any bytes and any keys: never a panic, never a key not asked for, never a NUL in a value.
    #[test]
    fn environ_byte_soup_never_panics(
        buf in hostile_bytes(256),
        keys in prop::collection::vec("[A-Za-z_=]{0,6}", 0..5),
    ) {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        for (k, v) in environ_keys(&buf, &keys) {
            prop_assert!(keys.contains(&k));
            prop_assert!(!v.as_bytes().contains(&0));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /proc/PID/maps
// ---------------------------------------------------------------------------------------------

/// One line of `/proc/PID/maps`, with the path it names (if any).
fn maps_line() -> impl Strategy<Value = (Vec<u8>, Option<Vec<u8>>)> {
    let path = prop::collection::vec(
        hostile_byte().prop_filter("one line", |&b| b != b'\n'),
        0..40,
    )
    .prop_map(|mut p| {
        p.insert(0, b'/');
        p
    });
    (
        any::<(u32, u32, bool, u64)>(),
        prop::sample::select(vec!["r--p", "r-xp", "rw-p", "r--s", "---p"]),
        0usize..30,
        prop_oneof![
            3 => path.prop_map(Some),
            1 => prop::sample::select(vec!["[heap]", "[stack]", "[vdso]", "[vvar]", ""])
                .prop_map(|p| Some(p.as_bytes().to_vec())),
        ],
    )
        .prop_map(|((lo, len, deleted, inode), perms, pad, path)| {
            let mut line = format!(
                "{:x}-{:x} {perms} {:08x} fd:01 {inode}",
                lo,
                u64::from(lo) + u64::from(len),
                u64::from(len) * 4096
            )
            .into_bytes();
            line.extend(std::iter::repeat_n(b' ', pad + 1));
            if let Some(p) = &path {
                line.extend_from_slice(p);
            }
            let mut named = path.filter(|p| p.first() == Some(&b'/'));
            if deleted {
                if let Some(p) = named.as_mut() {
                    p.extend_from_slice(b" (deleted)");
                    line.extend_from_slice(b" (deleted)");
                }
            }
            (line, named)
        })
}

proptest! {
    #![proptest_config(config(1024))]

    /// Any bytes: every path found is absolute, lies within one line of the input.
    #[test]
    fn maps_byte_soup_never_panics(buf in hostile_bytes(256)) {
        let lo = buf.as_ptr() as usize;
        for path in maps_paths(&buf) {
            prop_assert_eq!(path.first(), Some(&b'/'));
            prop_assert!(!path.contains(&b'\n'));
            let p = path.as_ptr() as usize;
            prop_assert!(p >= lo && p + path.len() <= lo + buf.len());
        }
    }

    /// Lines the way the kernel prints them: every file path comes back whole (spaces,
    /// hostile bytes and the ` (deleted)` suffix included), pseudo-paths and anonymous
    /// mappings do not, and a path repeated on consecutive mappings is listed once.
    #[test]
    fn maps_lines_give_their_paths(lines in prop::collection::vec(maps_line(), 0..12)) {
        let mut buf = Vec::new();
        let mut want: Vec<Vec<u8>> = Vec::new();
        for (line, path) in &lines {
            buf.extend_from_slice(line);
            buf.push(b'\n');
            if let Some(p) = path {
                if want.last() != Some(p) {
                    want.push(p.clone());
                }
            }
        }
        let got: Vec<Vec<u8>> = maps_paths(&buf).into_iter().map(<[u8]>::to_vec).collect();
        prop_assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&buf));
    }
}

// ---------------------------------------------------------------------------------------------
// Escaping
// ---------------------------------------------------------------------------------------------

/// Characters that attack terminals and the escape itself, and ordinary text.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        2 => prop::sample::select(vec![
            '\\', 'x', 'u', '{', '}', '0', 'f', 'n', 'r', 't', '\n', '\r', '\t', '\u{1b}',
            '\u{7f}', '\u{85}', '\u{9b}', '\u{200b}', '\u{200e}', '\u{2028}', '\u{202e}',
            '\u{2066}', '\u{2069}', '\u{061c}', '\u{feff}', '\u{fff9}', '\u{e0001}', '\u{e007f}',
            'é', '日', '\u{10ffff}',
        ]),
        1 => prop::char::range('\u{0}', '\u{ff}'),
    ]
}

proptest! {
    #![proptest_config(config(2048))]

    /// Any bytes: no dangerous character survives, and the escape is undone exactly.
    #[test]
    fn escape_bytes_is_safe_and_reversible(bytes in hostile_bytes(256)) {
        let e = escape_bytes(&bytes);
        prop_assert!(
            !e.chars().any(is_dangerous),
            "dangerous character in {:?}", e
        );
        prop_assert_eq!(unescape(&e), Some(bytes));
    }

    /// Any text, with the characters that attack terminals and the escape syntax itself.
    #[test]
    fn escape_text_is_safe_and_reversible(s in prop::collection::vec(hostile_char(), 0..64)) {
        let s: String = s.into_iter().collect();
        let e = escape(&s);
        prop_assert!(!e.chars().any(is_dangerous), "dangerous character in {:?}", e);
        prop_assert_eq!(unescape(&e), Some(s.into_bytes()));
    }

    /// A command line: each argument escaped, so no dangerous character and no raw newline.
    #[test]
    fn escape_cmdline_is_safe(args in prop::collection::vec(hostile_bytes(32), 0..8)) {
        let args: Vec<OsString> = args.into_iter().map(OsString::from_vec).collect();
        let e = escape_cmdline(&args);
        prop_assert!(!e.chars().any(is_dangerous), "dangerous character in {:?}", e);
    }

    /// `unescape` of text that `escape_bytes` never produced: `None` or bytes, never a panic.
    #[test]
    fn unescape_never_panics(s in prop::collection::vec(hostile_char(), 0..64)) {
        let s: String = s.into_iter().collect();
        let _ = unescape(&s);
    }
}

/// Every character below U+0100 and every one `is_dangerous` names in the planes that matter:
/// exhaustive, not sampled.
#[test]
fn every_dangerous_character_is_escaped() {
    let mut checked = 0;
    for cp in (0..0x3_0000u32).chain(0xe_0000..0xe_0100) {
        let Some(c) = char::from_u32(cp) else {
            continue;
        };
        let s = c.to_string();
        let e = escape(&s);
        assert!(!e.chars().any(is_dangerous), "U+{cp:04X} escaped to {e:?}");
        assert_eq!(unescape(&e), Some(s.into_bytes()), "U+{cp:04X}");
        checked += 1;
    }
    assert!(checked > 190_000);
}

// ---------------------------------------------------------------------------------------------
// Remedies: pasted into a root shell
// ---------------------------------------------------------------------------------------------

use relwatch::escape::shell_word;
use relwatch::owner::remedy::{Arg, Command as Remedy};
use relwatch::report::words::command_line;

/// An argument: any bytes, or a short word of plain characters and the ones shells read
/// (`$`, `;`, quotes, globs, `~`, `=`, `!`, ...), which alone would slip into an unquoted word.
fn shell_arg() -> impl Strategy<Value = Vec<u8>> {
    let shell = prop::sample::select(&b"aZ09@%+:,./_-$;&|<>()[]{}*?~=!#'\"` \t\n\\^"[..]);
    prop_oneof![hostile_bytes(24), prop::collection::vec(shell, 0..6)]
}

/// The words `shell` reads from `line` (`set -- LINE`, then each word NUL-terminated): what
/// the command would run with, and nothing else, unless something in it expanded.
fn words_read_by(shell: &str, line: &str) -> Result<Vec<Vec<u8>>, TestCaseError> {
    let script = format!("set -- {line}\nprintf '%s\\0' \"$@\"");
    let out = std::process::Command::new(shell)
        .args(["-c", &script])
        .current_dir(std::env::temp_dir())
        .env_clear()
        .output()
        .map_err(|e| TestCaseError::fail(format!("run {shell}: {e}")))?;
    prop_assert!(out.status.success(), "{} failed on {}", shell, line);
    let mut words: Vec<Vec<u8>> = out.stdout.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    prop_assert_eq!(words.pop(), Some(Vec::new()), "output ends in NUL");
    Ok(words)
}

/// Whether `sh` reads `$'...'` (bash or busybox as `sh`, a POSIX.1-2024 shell); dash does not.
fn sh_reads_ansi_c_quotes() -> bool {
    std::process::Command::new("sh")
        .args(["-c", "printf %s $'\\x41'"])
        .output()
        .is_ok_and(|o| o.stdout == b"A")
}

proptest! {
    #![proptest_config(config(256))]

    /// A remedy command made of any bytes (NUL cannot be in an argument) is valid shell
    /// (`sh -n`), and bash, what root's shell usually is, reads back exactly its argv: nothing
    /// expands, nothing splits, nothing runs. dash (Debian's `sh`, without `$'...'`) reads
    /// the same number of words, each plain or quoted one exact and each `$'...'` one as the
    /// literal text `$...`: never code.
    #[test]
    fn remedy_commands_read_back_as_their_argv(
        args in prop::collection::vec(shell_arg(), 0..6),
    ) {
        let args: Vec<Vec<u8>> = args
            .into_iter()
            .map(|a| a.into_iter().map(|b| if b == 0 { b'0' } else { b }).collect())
            .collect();
        let command = Remedy::new(
            "supervisorctl",
            args.iter().map(|a| Arg::name(OsString::from_vec(a.clone()))).collect::<Vec<_>>(),
        );
        let line = command_line(&command);
        prop_assert!(!line.chars().any(is_dangerous), "dangerous character in {:?}", line);
        let checked = std::process::Command::new("sh").args(["-n", "-c", &line]).output();
        prop_assert!(
            checked.as_ref().is_ok_and(|o| o.status.success()),
            "sh -n refuses {:?}: {:?}", line, checked
        );
        let mut argv = vec![b"supervisorctl".to_vec()];
        argv.extend(args.iter().cloned());
        prop_assert_eq!(&words_read_by("bash", &line)?, &argv, "bash reads {}", line);
        let dash_reads: Vec<Vec<u8>> = argv
            .iter()
            .map(|a| {
                let word = shell_word(OsString::from_vec(a.clone()));
                match word.strip_prefix("$'").and_then(|w| w.strip_suffix('\'')) {
                    Some(body) if !sh_reads_ansi_c_quotes() => [b"$", body.as_bytes()].concat(),
                    _ => a.clone(),
                }
            })
            .collect();
        prop_assert_eq!(&words_read_by("sh", &line)?, &dash_reads, "sh reads {}", line);
    }
}

// ---------------------------------------------------------------------------------------------
// The configuration file
// ---------------------------------------------------------------------------------------------

use relwatch::config::{parse_str, Config, MAX_GRACE};
use std::path::Path;

const CONFIG_PATH: &str = "/etc/relwatch/config.yaml";

/// What a parsed configuration promises (src/config/mod.rs), whatever text it came from.
fn check_config(
    text: &str,
    got: Result<Config, relwatch::config::ConfigError>,
) -> Result<(), TestCaseError> {
    match got {
        Ok(c) => {
            prop_assert!(
                c.grace.is_none_or(|g| g <= MAX_GRACE),
                "grace {:?} from {:?}",
                c.grace,
                text
            );
            prop_assert!(
                c.discover.iter().all(|d| d.is_absolute()),
                "discover {:?}",
                c.discover
            );
            let mut names = std::collections::HashSet::new();
            for app in &c.apps {
                prop_assert!(
                    !app.name.is_empty() && !app.name.chars().any(char::is_control),
                    "app name {:?} from {:?}",
                    app.name,
                    text
                );
                prop_assert!(
                    names.insert(app.name.clone()),
                    "app {:?} twice in {:?}",
                    app.name,
                    text
                );
                prop_assert!(
                    app.root.is_absolute(),
                    "root {:?} from {:?}",
                    app.root,
                    text
                );
                if let Some(r) = &app.releases {
                    prop_assert!(r.is_relative(), "releases {:?} from {:?}", r, text);
                    prop_assert!(
                        !r.components().any(|c| c == std::path::Component::ParentDir),
                        "releases {:?} from {:?}",
                        r,
                        text
                    );
                }
                prop_assert!(app.grace.is_none_or(|g| g <= MAX_GRACE));
                let mut roles = std::collections::HashSet::new();
                for role in &app.roles {
                    prop_assert!(!role.name.is_empty());
                    prop_assert!(
                        roles.insert(role.name.clone()),
                        "role {:?} twice",
                        role.name
                    );
                    if let (Some(min), Some(max)) = (role.min, role.max) {
                        prop_assert!(min <= max, "min {} > max {} from {:?}", min, max, text);
                    }
                    if role.singleton {
                        prop_assert_eq!(role.max, Some(1));
                    }
                }
            }
        }
        Err(e) => {
            // The message reaches a terminal: the file's text must come out escaped.
            let msg = e.to_string();
            prop_assert!(
                !msg.chars().any(is_dangerous),
                "unescaped character in {:?}",
                msg
            );
            prop_assert!(
                msg.starts_with(CONFIG_PATH),
                "message does not name the file: {:?}",
                msg
            );
        }
    }
    Ok(())
}

/// Pieces of YAML: the config's own keys and values, YAML's odd corners (anchors, aliases,
/// tags, flow collections, block scalars, documents, directives) and hostile characters.
fn yaml_token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "grace: ", "discover:", "apps:", "- ", "  ", "    ", "      ", "\n", "name: ", "root: ",
            "releases: ", "ignore:", "roles:", "match: ", "singleton: ", "min: ", "max: ",
            "shop", "queue", "/srv/shop", "/srv", "releases", "../x", "relative/dir", "5m", "0s",
            "90s", "1h 30m", "31d", "99999999999999999999d", "-1", "0", "2", "8", "1e999", "true",
            "false", "null", "~", "\"^/usr/sbin/sshd\"", "\"(unclosed\"", "'[z-a]'", "\"a{99999}\"",
            "\"\\u202e\\x1b[31m\"", "&a ", "*a", "*b", "<<: *a", "!!str ", "!!int ", "!custom ",
            "? ", ": ", "{", "}", "[", "]", ", ", "|", ">-", "---\n", "...\n", "%YAML 1.2\n",
            "%TAG ! tag:x,2000:\n", "# comment", "'", "\"", "\\", "\t", "\u{feff}", "\u{202e}",
            "\u{1b}[2J", "\r\n", "\u{0}", "\u{85}", "\u{2028}", "日本", "é",
        ]).prop_map(str::to_owned),
        1 => "[ -~]{0,12}",
        1 => any::<char>().prop_map(|c| c.to_string()),
    ]
}

/// A small valid configuration to start mutations from.
const SMALL_CONFIG: &str = "grace: 5m\napps:\n  - name: shop\n    root: /srv/shop\n    \
releases: releases\n    roles:\n      - name: queue\n        match: \"artisan queue:work\"\n        min: 1\n        max: 4\n";

/// An edit of a text: replace a character range with a token.
fn mutate(text: &str, edits: &[(prop::sample::Index, prop::sample::Index, String)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, len, token) in edits {
        let start = at.index(chars.len() + 1);
        let end = (start + len.index(4)).min(chars.len());
        chars.splice(start..end, token.chars());
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(config(256))]

    /// Any text: a configuration that keeps its promises, or an error that names the file
    /// and escapes what it quotes. Never a panic.
    #[test]
    fn config_any_text_never_panics(text in ".{0,200}") {
        check_config(&text, parse_str(&text, Path::new(CONFIG_PATH)))?;
    }

    /// YAML-ish text built from the config's keys and YAML's odd corners.
    #[test]
    fn config_yamlish_never_panics(tokens in prop::collection::vec(yaml_token(), 0..40)) {
        let text: String = tokens.concat();
        check_config(&text, parse_str(&text, Path::new(CONFIG_PATH)))?;
    }

    /// The shipped example and a small config, edited here and there.
    #[test]
    fn config_mutated_examples_never_panic(
        small in any::<bool>(),
        edits in prop::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>(), yaml_token()),
            1..6,
        ),
    ) {
        let base = if small { SMALL_CONFIG } else { relwatch::config::example() };
        let text = mutate(base, &edits);
        check_config(&text, parse_str(&text, Path::new(CONFIG_PATH)))?;
    }

    /// Deep nesting ends in an answer, not a stack overflow.
    #[test]
    fn config_deep_yaml_is_refused_or_parsed(
        depth in 1usize..20_000,
        open in prop::sample::select(vec!["[", "{a: ", "- ", "[{a: ", "apps: ", "- - "]),
    ) {
        let deep = format!("apps: {}", open.repeat(depth));
        check_config(&deep, parse_str(&deep, Path::new(CONFIG_PATH)))?;
    }

}

/// Alias fan-out (billion laughs: 9^9 strings from 500 bytes) is refused in bounded time and
/// memory, not expanded.
#[test]
fn config_billion_laughs_is_refused() {
    let mut lol = String::from(
        "apps: &l0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 9].join(",");
        lol.push_str(&format!("x{i}: &l{i} [{refs}]\n"));
    }
    let got = parse_str(&lol, Path::new(CONFIG_PATH));
    assert!(got.is_err(), "a billion laughs was accepted");
    check_config(&lol, got).unwrap();
}
