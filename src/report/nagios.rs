//! The Nagios renderer: the monitoring-plugin output format that Nagios, Icinga 2, Naemon,
//! Sensu and Telegraf's `nagios` parser read.
//!
//! ```text
//! RELWATCH CRITICAL - <summary> | deleted=3;;0;0; old=2;;;0; ... scan_time=0.043s;;;0;
//! CRITICAL deleted-release: app shop, release 65, pids 100 101 102: <message>; fix: <remedy>
//! ...
//! app shop (/srv/shop): current release 67, 6 processes: 2 current, 2 old, 3 deleted
//! ```
//!
//! - The first line is the status (from the exit code) and the summary, then ` | ` and the
//!   performance data: all of it on the first line, so a server that truncates long output
//!   (NRPE, Nagios' 8 KiB limit) keeps every number.
//! - Perfdata labels are fixed ASCII words, never an app name: `'label'=value[UOM];warn;crit;
//!   min;max` needs no quoting, and Telegraf's parser (which cannot read `=` in a label) and
//!   Sensu's (which splits on spaces) read them all.
//! - Then one line per finding and one per app (the long output). `|` appears nowhere but as
//!   the perfdata separator: Telegraf rejects a first line with two, and takes the first
//!   long-output line holding one for more perfdata. Every untrusted string goes through
//!   [`crate::escape::escape`], and every line through [`line()`], which turns `|` into
//!   `\x7c` (the same reversible convention) and any control character left into its escape,
//!   so a newline inside a message can never start a line of its own.

use super::{releases_of, words, Report};
use crate::attribution::ReleaseState;
use crate::escape::{escape, visible};
use crate::findings::{Finding, Kind};
use std::fmt::Write;

/// Make already-escaped text safe for one line of plugin output: `|` becomes `\x7c`, and a
/// control or invisible character that slipped through becomes its escape. Backslashes are
/// left alone: the text is escaped already, so `\x7c` unescapes to `|` like every other escape.
pub fn line(text: &str) -> String {
    visible(text).replace('|', "\\x7c")
}

/// An untrusted string (app or release name, path) for plugin output.
fn untrusted(s: impl AsRef<std::ffi::OsStr>) -> String {
    line(&escape(s))
}

/// One performance datum: `label=value[uom];warn;crit;min;max`, trailing empty fields kept
/// as the guidelines show them. Values are never `U`: Telegraf drops all perfdata on one.
struct Perf {
    label: &'static str,
    value: String,
    uom: &'static str,
    warn: &'static str,
    crit: &'static str,
}

impl Perf {
    fn count(label: &'static str, value: usize, warn: &'static str, crit: &'static str) -> Self {
        Perf {
            label,
            value: value.to_string(),
            uom: "",
            warn,
            crit,
        }
    }
}

fn perfdata(r: &Report) -> Vec<Perf> {
    let scan = if r.scan_seconds.is_finite() {
        format!("{:.3}", r.scan_seconds.max(0.0))
    } else {
        "0".to_string()
    };
    let kinds = Kind::ordered_by(|a| a.perfdata.as_ref().map(|p| p.place));
    let mut perf: Vec<Perf> = kinds
        .into_iter()
        .filter_map(|about| {
            let p = about.perfdata.as_ref()?;
            Some(Perf::count(
                p.label,
                about.tally(r.findings),
                p.warn,
                p.crit,
            ))
        })
        .collect();
    perf.extend([
        Perf::count("processes", r.attr.placements.len(), "", ""),
        Perf::count("scanned", r.snap.processes.len(), "", ""),
        Perf::count("apps", r.roots.len(), "", ""),
        Perf {
            label: "scan_time",
            value: scan,
            uom: "s",
            warn: "",
            crit: "",
        },
    ]);
    perf
}

/// Pids shown on a finding line, at most this many.
const MAX_PIDS: usize = 10;

fn finding(out: &mut String, r: &Report, f: &Finding) {
    let app = r
        .roots
        .get(f.app)
        .map(|root| untrusted(&root.name))
        .unwrap_or_else(|| "?".into());
    let mut head = format!(
        "{} {}: app {app}",
        words::severity(f.severity).upper,
        f.kind.as_str()
    );
    if let Some(rel) = &f.release {
        let _ = write!(head, ", release {}", untrusted(rel));
    }
    if let Some(role) = &f.role {
        let _ = write!(head, ", role {}", untrusted(role));
    }
    if !f.pids.is_empty() {
        head.push_str(", pids");
        for pid in f.pids.iter().take(MAX_PIDS) {
            let _ = write!(head, " {pid}");
        }
        if f.pids.len() > MAX_PIDS {
            let _ = write!(head, " and {} more", f.pids.len() - MAX_PIDS);
        }
    }
    // Message and remedy come escaped from `words`; `line` keeps them on one line.
    let Some(root) = r.roots.get(f.app) else {
        return;
    };
    let _ = writeln!(
        out,
        "{head}: {}; fix: {}",
        line(&words::message(f, root).to_string()),
        line(&words::remedy(f, root).to_string())
    );
}

fn app_line(out: &mut String, r: &Report, app: usize) {
    let root = &r.roots[app];
    let current = line(&words::current(root, "current release"));
    let (mut on, mut counts) = (0, [0usize; 4]);
    for row in releases_of(r, app) {
        let i = match row.state {
            ReleaseState::Current => 0,
            ReleaseState::Old => 1,
            ReleaseState::Deleted => 2,
            ReleaseState::Unknown => 3,
        };
        counts[i] += row.pids.len();
        on += row.pids.len();
    }
    let mut parts = Vec::new();
    for (n, word) in counts.iter().zip(["current", "old", "deleted", "unknown"]) {
        if *n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    let _ = writeln!(
        out,
        "app {} ({}): {current}, {}{}{}",
        untrusted(&root.name),
        untrusted(&root.root),
        words::count(on, "process", "processes"),
        if parts.is_empty() { "" } else { ": " },
        parts.join(", ")
    );
}

/// Render the report as monitoring-plugin output (the exit code is [`Report::exit`]).
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let perf: Vec<String> = perfdata(r)
        .iter()
        .map(|p| format!("{}={}{};{};{};0;", p.label, p.value, p.uom, p.warn, p.crit))
        .collect();
    let _ = writeln!(
        out,
        "RELWATCH {} - {} | {}",
        r.exit.label(),
        line(&words::summary(r)),
        perf.join(" ")
    );
    for f in r.findings {
        finding(&mut out, r, f);
    }
    for app in 0..r.roots.len() {
        app_line(&mut out, r, app);
    }
    out
}

/// The output of a run that could not answer (bad arguments or config, a deploy root it cannot
/// read): `RELWATCH UNKNOWN - <message>`, exit 3. One line, no performance data: the `|` of a
/// message becomes `\x7c` like any other. A poller reads stdout only (NRPE drops stderr), so
/// this is what its operator sees.
pub fn error(message: &str) -> String {
    format!(
        "RELWATCH {} - {}\n",
        crate::exit::ExitCode::Unknown.label(),
        line(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escape::is_dangerous;

    use crate::owner::Supervisor;
    use crate::testkit::{bless_or_compare, owner, Fixture};

    const GOLDEN: &str = include_str!("../../tests/golden/nagios.txt");

    #[test]
    fn golden_output_with_hostile_names() {
        let fx = Fixture::new();
        let out = render(&fx.report());
        bless_or_compare("nagios.txt", GOLDEN, &out);
    }

    /// What a plugin-output parser reads from `out`: the status word, and the perfdata labels
    /// (none when there is no `|`). Panics, failing the test, on anything the parsers below
    /// would refuse or misread.
    ///
    /// How Telegraf's nagios parser splits output (plugins/parsers/nagios): the first line
    /// on `|` into at most two parts (more is "illegal output format"); long output until a
    /// line holding `|`; perfdata matched by `([^=]+=\S+)` and
    /// `^([^=]+)=([\d\.\-\+eE]+)([\w\/%]*);?([\d\.\-\+eE:~@]+)?;?(...)?;?(...)?;?(...)?`.
    /// Sensu Go takes the whole output split on `|` into exactly two parts.
    fn parse(out: &str) -> (&str, Vec<&str>) {
        let split = regex::Regex::new(r"([^=]+=\S+)").unwrap();
        let datum = regex::Regex::new(
            r"^([^=]+)=([\d\.\-\+eE]+)([\w\/%]*);?([\d\.\-\+eE:~@]+)?;?([\d\.\-\+eE:~@]+)?;?([\d\.\-\+eE]+)?;?([\d\.\-\+eE]+)?;?\s*$",
        )
        .unwrap();
        let status_line =
            regex::Regex::new(r"^RELWATCH (OK|WARNING|CRITICAL|UNKNOWN) - \S").unwrap();
        assert!(out.ends_with('\n'), "{out}");
        assert!(out.matches('|').count() <= 1, "{out}");
        for l in out.lines() {
            assert!(!l.is_empty(), "{out}");
            assert!(!l.chars().any(is_dangerous), "{l:?}");
        }
        let first = out.lines().next().unwrap();
        let (status, perf) = first.split_once(" | ").unwrap_or((first, ""));
        let word = status_line
            .captures(status)
            .unwrap_or_else(|| panic!("not a status line: {status:?}"))
            .get(1)
            .unwrap()
            .as_str();
        let labels: Vec<&str> = split
            .find_iter(perf)
            .map(|m| {
                let p = m.as_str().trim();
                let c = datum.captures(p).unwrap_or_else(|| panic!("{p:?}"));
                c.get(2).unwrap().as_str().parse::<f64>().unwrap();
                c.get(1).unwrap().as_str()
            })
            .collect();
        let words = if perf.is_empty() {
            0
        } else {
            perf.split(' ').count()
        };
        assert_eq!(labels.len(), words, "one space between perfdata: {perf}");
        (word, labels)
    }

    #[test]
    fn parsers_see_one_status_line_and_every_perfdatum() {
        for fx in [Fixture::new(), Fixture::empty()] {
            let out = render(&fx.report());
            assert_eq!(out.matches('|').count(), 1, "{out}");
            let (status, labels) = parse(&out);
            assert_eq!(status, fx.exit.label());
            for want in [
                "deleted",
                "old",
                "broken",
                "duplicate",
                "missing",
                "zombies",
                "orphans",
                "unreadable",
                "processes",
            ] {
                assert!(labels.contains(&want), "{want} missing from {out}");
            }
        }
    }

    /// An argument error is a status line the same parsers read: UNKNOWN, one line, and a `|`
    /// or newline in the message (argv is anyone's) never splits it.
    #[test]
    fn argument_errors_are_plugin_output_too() {
        use crate::cli::{usage_message, Cli, ErrorOutput};
        use clap::Parser;
        for argv in [
            &["relwatch", "check", "--format", "nagios", "--grace", "5"][..],
            &["relwatch", "check", "-f", "nagios", "--frobnicate"],
            &[
                "relwatch",
                "check",
                "--format=nagios",
                "--grace",
                "5m|x=1\nRELWATCH OK - ",
            ],
            &["relwatch", "in-use", "-fnagios"],
            &["relwatch", "ps", "--format", "nagios"],
        ] {
            let e = Cli::try_parse_from(argv).unwrap_err();
            let args: Vec<std::ffi::OsString> = argv.iter().map(Into::into).collect();
            let to = ErrorOutput::from_argv(&args);
            let message = visible(&usage_message(&e));
            assert_eq!(to.format, crate::cli::Format::Nagios, "{argv:?}");
            let out = error(&message);
            assert_eq!(out.matches('|').count(), 0, "{out}");
            assert_eq!(out.lines().count(), 1, "{out}");
            assert_eq!(parse(&out), ("UNKNOWN", vec![]), "{argv:?}");
        }
    }

    #[test]
    fn counts_match_the_scan() {
        let fx = Fixture::new();
        let out = render(&fx.report());
        let perf = out.lines().next().unwrap().split(" | ").nth(1).unwrap();
        for want in [
            "deleted=3;;0;0;",
            "old=2;;;0;",
            "broken=1;;0;0;",
            "duplicate=1;;0;0;",
            "missing=1;;0;0;",
            "zombies=1;0;;0;",
            "unreadable=2;;;0;",
        ] {
            assert!(perf.split(' ').any(|p| p == want), "{want} not in {perf}");
        }
        assert!(out.starts_with("RELWATCH CRITICAL - "), "{out}");
    }

    #[test]
    fn a_newline_or_bar_in_any_text_stays_on_its_line() {
        assert_eq!(line("a|b"), "a\\x7cb");
        assert_eq!(line("a\nb\r\x1b\u{202e}"), "a\\nb\\r\\x1b\\u{202e}");
        assert_eq!(line("already \\x1b escaped"), "already \\x1b escaped");
        assert_eq!(
            crate::escape::unescape(&untrusted("65|x\n")).unwrap(),
            b"65|x\n"
        );
        // A process without a command line whose comm holds a newline and a bar, supervised as a program named with CR LF.
        let fx = Fixture::with(
            vec![(
                100,
                owner(
                    Supervisor::Supervisord {
                        pid: 1,
                        program: Some("a\r\nb|c".into()),
                    },
                    None,
                ),
            )],
            |procs| {
                for p in procs.iter_mut().filter(|p| p.pid == 100) {
                    p.cmdline = Default::default();
                    p.comm = b"line one\nRELWATCH OK - fake | ok=1".to_vec().into();
                }
            },
        );
        let out = render(&fx.report());
        assert_eq!(out.lines().count(), fx.findings.len() + fx.roots.len() + 1);
        assert_eq!(out.matches('|').count(), 1, "{out}");
        assert!(
            out.contains("(line one\\nRELWATCH OK - fake \\x7c ok=1) pointing"),
            "{out}"
        );
        assert!(
            out.contains("fix: as uid 1000: supervisorctl restart $'a\\r\\nb\\x7cc'"),
            "{out}"
        );
    }
}
