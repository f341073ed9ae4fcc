//! Switch history: which release was current at any moment.
//!
//! A process started through `current/` before the last switch runs whatever release was
//! current when it started: after a rollback (3 -> 2) that may be the current one again. The
//! sources, best first:
//! - Deployer's `.dep/releases_log`: one JSON object a line, appended by `deploy:release`
//!   (`{"created_at":"2021-11-06T20:51:45+0000","release_name":"1","user":"...","target":"HEAD"}`).
//!   `dep rollback` writes nothing there: the last switch (the link's ctime) fills that gap.
//! - Capistrano's `revisions.log`: `Branch main (at abc123) deployed as release 20240101120000
//!   by user` (the release name is the deploy's UTC start time) and `user rolled back to release
//!   20240101120000` (no time: only the order says when).
//! - The releases' birth times (statx `btime`), the last resort.
//!
//! Each says when a release *became* current only roughly (when it was created, not when
//! `current` moved to it); the last switch is exact: the ctime of the `current` link. Lines
//! that do not parse are skipped; a log is read from its end, at most [`MAX_LOG_BYTES`].

use std::ffi::{OsStr, OsString};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Most bytes read from the end of a release log: a log of ten years of deploys holds no more
/// than this in the part that matters.
pub const MAX_LOG_BYTES: u64 = 256 * 1024;

/// Where a history comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    ReleasesLog,
    RevisionsLog,
    /// The switches this run saw ([`super::DeployRoot::seen`]): the agent's own record.
    Seen,
    BirthTimes,
}

impl Source {
    /// The source as the subject of a sentence, with its verb.
    pub fn says(self) -> &'static str {
        match self {
            Source::ReleasesLog => ".dep/releases_log says",
            Source::RevisionsLog => "revisions.log says",
            Source::Seen => "relwatch saw the switches:",
            Source::BirthTimes => "the releases' birth times say",
        }
    }
}

/// `current` moved to `release` at `at` (seconds since the epoch; unknown for a Capistrano
/// rollback line).
#[derive(Debug, Clone, PartialEq)]
pub struct Switch {
    pub release: OsString,
    pub at: Option<f64>,
}

/// The switches a deploy tool recorded, oldest first (in the order of the log).
#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    pub source: Source,
    pub switches: Vec<Switch>,
}

/// A stretch of time during which one release was current.
#[derive(Debug, Clone, PartialEq)]
pub struct Period<'a> {
    pub release: &'a OsStr,
    pub from: f64,
    /// When the next switch came; `None`: it is still current.
    pub until: Option<f64>,
    pub source: Source,
}

/// A parser of one tool's log.
type Parser = fn(&[u8]) -> Vec<Switch>;

/// Read the release log of the deploy root `root_dir`: Deployer's, else Capistrano's. `None`
/// when neither exists or neither holds a line that parses.
pub fn read(root_dir: &Path) -> Option<Log> {
    let sources: [(&str, Source, Parser); 2] = [
        (".dep/releases_log", Source::ReleasesLog, parse_releases_log),
        ("revisions.log", Source::RevisionsLog, parse_revisions_log),
    ];
    sources.into_iter().find_map(|(file, source, parse)| {
        let switches = parse(&read_tail(&root_dir.join(file))?);
        (!switches.is_empty()).then_some(Log { source, switches })
    })
}

/// The last [`MAX_LOG_BYTES`] of a regular file, from its first whole line. Never follows a
/// symlink and never blocks on a FIFO (the deploy user owns the root; relwatch runs as root).
fn read_tail(path: &Path) -> Option<Vec<u8>> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(
            (nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_NONBLOCK
                | nix::fcntl::OFlag::O_NOCTTY)
                .bits(),
        )
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let cut = meta.len() > MAX_LOG_BYTES;
    if cut {
        file.seek(SeekFrom::Start(meta.len() - MAX_LOG_BYTES))
            .ok()?;
    }
    let mut bytes = Vec::new();
    file.take(MAX_LOG_BYTES).read_to_end(&mut bytes).ok()?;
    if cut {
        let first = bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| i + 1);
        bytes.drain(..first);
    }
    Some(bytes)
}

/// Deployer's `.dep/releases_log`: a JSON object a line with `release_name` (a string, or a
/// number from a hand-edited log) and `created_at` (ISO 8601). Other lines are skipped.
pub fn parse_releases_log(bytes: &[u8]) -> Vec<Switch> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_slice(line).ok()?;
            let release = match &v["release_name"] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return None,
            };
            if !is_release_name(release.as_bytes()) {
                return None;
            }
            let at = v["created_at"].as_str().and_then(parse_iso8601)?;
            Some(Switch {
                release: release.into(),
                at: Some(at),
            })
        })
        .collect()
}

/// Capistrano's `revisions.log`: `... deployed as release NAME by USER` (a deploy; a name of
/// 14 digits is its UTC time) and `USER rolled back to release NAME` (a rollback, time
/// unknown). Other lines are skipped.
pub fn parse_revisions_log(bytes: &[u8]) -> Vec<Switch> {
    const DEPLOYED: &[u8] = b" deployed as release ";
    const ROLLED: &[u8] = b" rolled back to release ";
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(i) = find(line, DEPLOYED) {
                let rest = &line[i + DEPLOYED.len()..];
                let name = rest.split(|&b| b == b' ').next()?;
                let at = std::str::from_utf8(name).ok().and_then(parse_stamp);
                return is_release_name(name).then(|| Switch {
                    release: OsStr::from_bytes(name).into(),
                    at,
                });
            }
            let name = &line[find(line, ROLLED)? + ROLLED.len()..];
            is_release_name(name).then(|| Switch {
                release: OsStr::from_bytes(name).into(),
                at: None,
            })
        })
        .collect()
}

/// A name that can be a directory in `releases/`: not empty, no `/`, no NUL, not `.`/`..`.
fn is_release_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.iter().any(|&b| b == b'/' || b == 0)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the epoch of `YYYY MM DD HH MM SS` given as digits, checked for range.
fn epoch(fields: [&str; 6]) -> Option<f64> {
    let mut n = [0i64; 6];
    for (slot, f) in n.iter_mut().zip(fields) {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = f.parse().ok()?;
    }
    let [y, mo, d, h, mi, s] = n;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some((days_from_civil(y, mo, d) * 86_400 + h * 3_600 + mi * 60 + s) as f64)
}

/// `2021-11-06T20:51:45+0000` (PHP's `DateTime::ISO8601`, what Deployer writes), also with
/// `Z`, `+00:00`, a space for `T` and a fraction of a second.
pub fn parse_iso8601(s: &str) -> Option<f64> {
    let s = s.trim();
    let (date, rest) = (s.get(..10)?, s.get(11..)?);
    if !matches!(s.as_bytes()[10], b'T' | b't' | b' ') {
        return None;
    }
    let (time, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => rest.split_at(i),
        None => return None,
    };
    let time = time.split('.').next()?;
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    let ([y, mo, da], [h, mi, se]) = (d.as_slice(), t.as_slice()) else {
        return None;
    };
    let local = epoch([y, mo, da, h, mi, se])?;
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let digits: String = zone[1..].chars().filter(|&c| c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let (hh, mm): (i64, i64) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
            sign * (hh * 3_600 + mm * 60)
        }
    };
    Some(local - offset as f64)
}

/// `20240101120000`, UTC (Capistrano's release names).
pub fn parse_stamp(s: &str) -> Option<f64> {
    if s.len() != 14 {
        return None;
    }
    epoch([
        s.get(..4)?,
        s.get(4..6)?,
        s.get(6..8)?,
        s.get(8..10)?,
        s.get(10..12)?,
        s.get(12..)?,
    ])
}

/// What was current when: a source's switches, ended by the last switch that is known exactly
/// (`current` moved to `current` at `switch_time`).
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    source: Source,
    switches: Vec<Switch>,
}

impl Timeline {
    /// `switches` in order, made to end with the last switch: entries after it are deploys
    /// that never became current (failed, or under way), and the entry that names `current`
    /// last is moved to the switch time (a release is created before `current` moves to it).
    pub fn new(
        source: Source,
        mut switches: Vec<Switch>,
        current: &OsStr,
        switch_time: f64,
    ) -> Timeline {
        switches.retain(|s| s.at.is_none_or(|a| a <= switch_time));
        match switches.last_mut() {
            Some(last) if last.release == current => last.at = Some(switch_time),
            _ => switches.push(Switch {
                release: current.into(),
                at: Some(switch_time),
            }),
        }
        Timeline { source, switches }
    }

    /// The timeline of the releases' birth times, oldest first.
    pub fn of_births(releases: &[super::Release], current: &OsStr, switch_time: f64) -> Timeline {
        let mut born: Vec<Switch> = releases
            .iter()
            .filter_map(|r| {
                r.created.map(|c| Switch {
                    release: r.name.clone(),
                    at: Some(c),
                })
            })
            .collect();
        born.sort_by(|a, b| a.at.unwrap_or(0.0).total_cmp(&b.at.unwrap_or(0.0)));
        Timeline::new(Source::BirthTimes, born, current, switch_time)
    }

    /// The release current at `t`, known to within `tick` seconds after it. `None` before the
    /// first switch, when a switch falls within the tick, or when switches of unknown time
    /// between two known ones leave more than one release possible.
    pub fn at(&self, t: f64, tick: f64) -> Option<Period<'_>> {
        let k = self
            .switches
            .iter()
            .rposition(|s| s.at.is_some_and(|a| a <= t))?;
        let next = (k + 1..self.switches.len()).find(|&j| self.switches[j].at.is_some());
        let unknown = &self.switches[k + 1..next.unwrap_or(self.switches.len())];
        let release = &self.switches[k].release;
        if unknown.iter().any(|s| &s.release != release) {
            return None;
        }
        let until = next.and_then(|j| self.switches[j].at);
        if until.is_some_and(|u| u < t + tick) {
            return None;
        }
        Some(Period {
            release,
            from: self.switches[k].at?,
            until,
            source: self.source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `dep deploy` wrote, three times, with a garbage line and a cut line between.
    const RELEASES_LOG: &[u8] = b"{\"created_at\":\"2021-11-06T20:51:45+0000\",\"release_name\":\"1\",\"user\":\"Anton Medvedev\",\"target\":\"HEAD\"}\n\
not json at all\n\
{\"created_at\":\"2021-11-06T21:00:50+0000\",\"release_name\":\"2\",\"user\":\"a\",\"target\":\"HEAD\"}\n\
{\"created_at\":\"2021-11-06T23:19:20+00:00\",\"release_name\":3,\"user\":\"a\"}\n\
{\"created_at\":\"yesterday\",\"release_name\":\"4\"}\n\
{\"created_at\":\"2021-11-06T23:30:00Z\",\"release_name\":\"../etc\"}\n\
{\"created_at\":\"2021-11-06T23:4";

    #[test]
    fn deployer_releases_log() {
        let s = parse_releases_log(RELEASES_LOG);
        let names: Vec<_> = s.iter().map(|s| s.release.to_str().unwrap()).collect();
        assert_eq!(names, ["1", "2", "3"]);
        assert_eq!(s[0].at, Some(1_636_231_905.0));
        assert_eq!(s[2].at, Some(1_636_240_760.0));
    }

    #[test]
    fn capistrano_revisions_log() {
        let log = b"Branch main (at 0b1c2d3) deployed as release 20240101120000 by deploy\n\
Branch main (at 4e5f6a7) deployed as release 20240102120000 by deploy\r\n\
deploy rolled back to release 20240101120000\n\
\xff\xfe garbage\n\
Branch main (at 89abcde) deployed as release custom-name by ci\n\
rolled back to release \n";
        let s = parse_revisions_log(log);
        let names: Vec<_> = s.iter().map(|s| s.release.to_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "20240101120000",
                "20240102120000",
                "20240101120000",
                "custom-name"
            ]
        );
        assert_eq!(s[0].at, Some(1_704_110_400.0));
        assert_eq!(s[2].at, None);
        assert_eq!(s[3].at, None);
    }

    #[test]
    fn times() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_iso8601("1970-01-01T01:00:00+0100"), Some(0.0));
        assert_eq!(parse_iso8601("1969-12-31 23:00:00.5-01:00"), Some(0.0));
        assert_eq!(
            parse_iso8601("2024-02-29T12:00:00+0000"),
            Some(1_709_208_000.0)
        );
        for bad in [
            "",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+01",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
        assert_eq!(parse_stamp("20240101120000"), Some(1_704_110_400.0));
        assert_eq!(parse_stamp("2024010112000x"), None);
        assert_eq!(parse_stamp("2024"), None);
    }

    fn sw(release: &str, at: Option<f64>) -> Switch {
        Switch {
            release: release.into(),
            at,
        }
    }

    #[test]
    fn a_rollback_makes_the_older_release_current_again() {
        // 1 at 100, 2 at 200, 3 at 300, then back to 2 at 400 (Deployer logs no rollback).
        let t = Timeline::new(
            Source::ReleasesLog,
            vec![
                sw("1", Some(100.0)),
                sw("2", Some(200.0)),
                sw("3", Some(300.0)),
            ],
            OsStr::new("2"),
            400.0,
        );
        let p = t.at(250.0, 0.01).unwrap();
        assert_eq!(
            (p.release.to_str(), p.from, p.until),
            (Some("2"), 200.0, Some(300.0))
        );
        assert_eq!(t.at(350.0, 0.01).unwrap().release, "3");
        assert_eq!(t.at(450.0, 0.01).unwrap().release, "2");
        assert_eq!(t.at(50.0, 0.01), None);
        assert_eq!(t.at(299.995, 0.01), None, "a switch within the tick");
    }

    #[test]
    fn the_last_switch_is_the_link_time_and_failed_deploys_never_were_current() {
        // 3 was created at 300 but `current` moved to it at 330; 4 was created at 500 and
        // never switched to.
        let t = Timeline::new(
            Source::ReleasesLog,
            vec![
                sw("2", Some(200.0)),
                sw("3", Some(300.0)),
                sw("4", Some(500.0)),
            ],
            OsStr::new("3"),
            330.0,
        );
        assert_eq!(t.at(310.0, 0.01).unwrap().release, "2");
        assert_eq!(t.at(600.0, 0.01).unwrap().release, "3");
    }

    #[test]
    fn rollbacks_of_unknown_time_leave_their_stretch_undecided() {
        // Capistrano: A at 100, B at 200, rolled back to A (when?), C at 400, now C.
        let t = Timeline::new(
            Source::RevisionsLog,
            vec![
                sw("A", Some(100.0)),
                sw("B", Some(200.0)),
                sw("A", None),
                sw("C", Some(400.0)),
            ],
            OsStr::new("C"),
            450.0,
        );
        assert_eq!(t.at(150.0, 0.01).unwrap().release, "A");
        assert_eq!(
            t.at(250.0, 0.01),
            None,
            "B or A: the rollback's time is unknown"
        );
        // The last line is the rollback to the current release: the link time is its time.
        let t = Timeline::new(
            Source::RevisionsLog,
            vec![sw("A", Some(100.0)), sw("B", Some(200.0)), sw("A", None)],
            OsStr::new("A"),
            300.0,
        );
        let p = t.at(150.0, 0.01).unwrap();
        assert_eq!((p.release.to_str(), p.until), (Some("A"), Some(200.0)));
        assert_eq!(t.at(250.0, 0.01).unwrap().release, "B");
    }

    #[test]
    fn a_log_is_read_from_its_end_and_never_through_a_link() {
        let dir = std::env::temp_dir().join(format!("relwatch-history-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".dep")).unwrap();
        let mut big = b"x".repeat(MAX_LOG_BYTES as usize);
        big.extend_from_slice(b"\n");
        big.extend_from_slice(RELEASES_LOG);
        std::fs::write(dir.join(".dep/releases_log"), &big).unwrap();
        let log = read(&dir).unwrap();
        assert_eq!(log.source, Source::ReleasesLog);
        assert_eq!(log.switches.len(), 3);
        std::fs::remove_file(dir.join(".dep/releases_log")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.join("revisions.log")).unwrap();
        assert_eq!(read(&dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
