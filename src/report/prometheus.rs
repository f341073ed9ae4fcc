//! The Prometheus renderer: the text exposition format, version 0.0.4, as node_exporter's
//! textfile collector reads it (`--output /var/lib/prometheus/node-exporter/relwatch.prom`).
//!
//! - No sample timestamps (the textfile collector rejects them) and no OpenMetrics-only types:
//!   every family is a `gauge`, with one `# HELP` and one `# TYPE` line, its samples contiguous.
//! - Labels name apps, deploy roots, releases, finding kinds and severities: never a pid or a
//!   command line, which would make a new series for every restart.
//! - A label value is the string as the text output shows it ([`crate::escape::escape`]:
//!   control characters, bidi overrides and invalid UTF-8 become `\xNN`-style escapes, so a
//!   non-UTF-8 release name stays distinct and safe), then escaped for the format (`\\`, `\"`,
//!   `\n`). A hostile directory name can neither end a line nor forge a label.
//! - No two samples of a family carry the same labels (node_exporter would drop the whole file):
//!   counts that land on the same labels are added, and an info sample is written once.
//! - Each app gets a sample for every main kind, 0 when it has no such finding, so rules can
//!   test `== 0` and a resolved alert clears instead of going stale.
//! - At most [`MAX_APPS`] apps get series (about 15 each): thousands of tiny deploy roots a
//!   user made must not make tens of thousands of series. Past it, the apps with the worst
//!   findings are kept (then the first found), and the file says how many were left out: a
//!   comment and `relwatch_roots_left_out`. The exit code still counts every finding.

use super::{words, Report};
use crate::attribution::ReleaseState;
use crate::escape::escape;
use crate::findings::Kind;
use std::collections::HashMap;
use std::fmt::Write;

const STATES: &[ReleaseState] = &[
    ReleaseState::Current,
    ReleaseState::Old,
    ReleaseState::Deleted,
    ReleaseState::Unknown,
];

/// Escape a label value for the exposition format: backslash, double quote and line feed.
fn label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// An untrusted string (path, release or app name) as a label value.
fn untrusted(s: impl AsRef<std::ffi::OsStr>) -> String {
    label_value(&escape(s))
}

/// A sample value: Go's `ParseFloat` syntax, which Prometheus uses.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        // Rust prints the shortest representation that round-trips, never with an exponent.
        format!("{v}")
    }
}

/// How a sample whose labels are already present is merged.
#[derive(Clone, Copy)]
enum Merge {
    Add,
    KeepFirst,
}

struct Family {
    name: &'static str,
    help: &'static str,
    /// Label text (`a="x",b="y"`) and value, in first-seen order.
    samples: Vec<(String, f64)>,
    index: HashMap<String, usize>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            samples: Vec::new(),
            index: HashMap::new(),
        }
    }

    fn set(&mut self, labels: &[(&str, &str)], v: f64, merge: Merge) {
        let mut text = String::new();
        for (i, (k, val)) in labels.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let _ = write!(text, "{k}=\"{val}\"");
        }
        match self.index.get(&text) {
            Some(&i) => {
                if let Merge::Add = merge {
                    self.samples[i].1 += v;
                }
            }
            None => {
                self.index.insert(text.clone(), self.samples.len());
                self.samples.push((text, v));
            }
        }
    }

    fn render(&self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} gauge", self.name);
        for (labels, v) in &self.samples {
            if labels.is_empty() {
                let _ = writeln!(out, "{} {}", self.name, value(*v));
            } else {
                let _ = writeln!(out, "{}{{{labels}}} {}", self.name, value(*v));
            }
        }
    }
}

/// At most this many apps get series in one textfile (see the module's doc).
pub const MAX_APPS: usize = 500;

/// Render the report as a Prometheus textfile.
pub fn render(r: &Report) -> String {
    render_capped(r, MAX_APPS)
}

fn render_capped(r: &Report, max_apps: usize) -> String {
    let kept = kept_apps(r, max_apps);
    let apps: Vec<Option<(String, String)>> = r
        .roots
        .iter()
        .enumerate()
        .map(|(i, root)| kept[i].then(|| (untrusted(&root.name), untrusted(&root.root))))
        .collect();
    let (info, switched) = links(r, &apps);
    let mut out = String::new();
    for family in scan(r)
        .iter()
        .chain([findings(r, &apps), processes(r, &apps), info, switched].iter())
    {
        family.render(&mut out);
    }
    let left_out = kept.iter().filter(|k| !**k).count();
    if left_out > 0 {
        let _ = writeln!(
            out,
            "# relwatch: {left_out} of {} deploy roots left out of the series above (at most {max_apps}; the worst findings first); relwatch_exit_code counts them all",
            r.roots.len()
        );
        one(
            (
                "relwatch_roots_left_out",
                "Deploy roots left out of this file's per-app series (more than it holds); absent when none.",
            ),
            left_out as f64,
        )
        .render(&mut out);
    }
    out
}

/// Which apps get series: all, or past `max`, those with the worst findings, then in order.
fn kept_apps(r: &Report, max: usize) -> Vec<bool> {
    let n = r.roots.len();
    if n <= max {
        return vec![true; n];
    }
    let mut worst: Vec<Option<crate::findings::Severity>> = vec![None; n];
    for f in r.findings {
        if let Some(w) = worst.get_mut(f.app) {
            *w = (*w).max(Some(f.severity));
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(worst[i]), i));
    let mut kept = vec![false; n];
    for &i in order.iter().take(max) {
        kept[i] = true;
    }
    kept
}

/// `relwatch_exit_code`: also in the error document.
const EXIT_CODE: (&str, &str) = (
    "relwatch_exit_code",
    "Exit code of the last scan: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
);

/// `relwatch_error`: 0 in every report, 1 in the error document, so an alert on it clears.
const ERROR: (&str, &str) = (
    "relwatch_error",
    "1 when the last run failed instead of reporting (bad arguments or config, a deploy root it cannot read; a comment at the top of the file says why), 0 when it reported.",
);

/// A family of one sample without labels.
fn one((name, help): (&'static str, &'static str), v: f64) -> Family {
    let mut family = Family::new(name, help);
    family.set(&[], v, Merge::KeepFirst);
    family
}

/// The textfile of a run that could not answer: the message as a comment, `relwatch_exit_code
/// 3` and `relwatch_error 1`. Nothing about a scan, since none ran: the staleness alerts see
/// the last scan's timestamp age (or vanish), and `relwatch_exit_code == 3` alerts at once.
pub fn error(message: &str) -> String {
    // `message` is one line already (escape::visible); a comment holds any text.
    let mut out = format!("# relwatch error: {message}\n");
    let unknown = crate::exit::ExitCode::Unknown;
    for family in [one(EXIT_CODE, f64::from(unknown.code())), one(ERROR, 1.0)] {
        family.render(&mut out);
    }
    out
}

/// The families about the scan as a whole.
fn scan(r: &Report) -> [Family; 6] {
    [
        one(EXIT_CODE, f64::from(r.exit.code())),
        one(ERROR, 0.0),
        one(
            (
                "relwatch_last_scan_timestamp_seconds",
                "When the last scan started, seconds since the Unix epoch.",
            ),
            r.snap.clock.now,
        ),
        one(
            (
                "relwatch_scan_duration_seconds",
                "How long the last scan took.",
            ),
            r.scan_seconds,
        ),
        one(
            (
                "relwatch_scanned_processes",
                "Processes read in the last scan.",
            ),
            r.snap.processes.len() as f64,
        ),
        one(
            (
                "relwatch_unreadable_processes",
                "Processes that could not be inspected (a cwd or exe denied, or on a filesystem that did not answer), each once, whatever app they could belong to.",
            ),
            r.attr.not_inspected() as f64,
        ),
    ]
}

/// Findings by app, kind and severity: every kind's usual severities at 0 for every app (an
/// alert on them clears rather than going stale), then one for each finding.
fn findings(r: &Report, apps: &[Option<(String, String)>]) -> Family {
    let mut family = Family::new(
        "relwatch_findings",
        "Findings of the last scan by app, deploy root, kind and severity.",
    );
    let mut add = |(app, root): &(String, String), kind: Kind, severity, v| {
        let labels = [
            ("app", app.as_str()),
            ("root", root.as_str()),
            ("kind", kind.as_str()),
            ("severity", words::severity(severity).name),
        ];
        family.set(&labels, v, Merge::Add);
    };
    for app in apps.iter().flatten() {
        for about in Kind::table().iter().filter(|a| a.always_in_series) {
            for &severity in about.severities {
                add(app, about.kind, severity, 0.0);
            }
        }
    }
    for f in r.findings {
        if let Some(Some(app)) = apps.get(f.app) {
            add(app, f.kind, f.severity, 1.0);
        }
    }
    family
}

/// Processes placed in each app by release state, every state at 0 for every app.
fn processes(r: &Report, apps: &[Option<(String, String)>]) -> Family {
    let mut family = Family::new(
        "relwatch_processes",
        "Processes placed in each app, by where they stand relative to current.",
    );
    let mut add = |(app, root): &(String, String), state: ReleaseState, v| {
        let labels = [
            ("app", app.as_str()),
            ("root", root.as_str()),
            ("release_state", state.as_str()),
        ];
        family.set(&labels, v, Merge::Add);
    };
    for app in apps.iter().flatten() {
        for &state in STATES {
            add(app, state, 0.0);
        }
    }
    for pl in &r.attr.placements {
        if let Some(Some(app)) = apps.get(pl.app) {
            add(app, pl.state, 1.0);
        }
    }
    family
}

/// Where each app's link points, and when it was switched.
fn links(r: &Report, apps: &[Option<(String, String)>]) -> (Family, Family) {
    let mut info = Family::new(
        "relwatch_current_release_info",
        "The release current points at (always 1; absent while the current link is broken).",
    );
    let mut switched = Family::new(
        "relwatch_switch_timestamp_seconds",
        "When current was last switched (ctime of the link, or its directory's mtime when that is more than a second earlier), seconds since the Unix epoch.",
    );
    for (root, (app, path)) in r
        .roots
        .iter()
        .zip(apps)
        .filter_map(|(root, app)| Some((root, app.as_ref()?)))
    {
        if let Some(release) = root.current_release() {
            let release = untrusted(release);
            info.set(
                &[("app", app), ("root", path), ("release", &release)],
                1.0,
                Merge::KeepFirst,
            );
        }
        if let Some(t) = root.switch_time {
            switched.set(&[("app", app), ("root", path)], t, Merge::KeepFirst);
        }
    }
    (info, switched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{bless_or_compare, Fixture};

    const GOLDEN: &str = include_str!("../../tests/golden/prometheus.prom");

    fn name_ok(s: &str) -> bool {
        let mut c = s.chars();
        matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
    }

    fn label_name_ok(s: &str) -> bool {
        let mut c = s.chars();
        matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            && !s.starts_with("__")
    }

    fn float_ok(s: &str) -> bool {
        matches!(s, "NaN" | "+Inf" | "-Inf") || s.parse::<f64>().is_ok_and(|v| v.is_finite())
    }

    /// Parse `{a="x",b="y"}` (without braces); returns the label names.
    fn labels(mut s: &str) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        while !s.is_empty() {
            let eq = s.find('=').ok_or("label without =")?;
            let name = &s[..eq];
            if !label_name_ok(name) {
                return Err(format!("bad label name {name:?}"));
            }
            if names.iter().any(|n| n == name) {
                return Err(format!("label {name} twice"));
            }
            names.push(name.to_string());
            s = s[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let mut chars = s.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err("unterminated label value".into()),
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\' | '"' | 'n')) => {}
                        other => return Err(format!("bad escape {other:?}")),
                    },
                    Some((_, '\n')) => return Err("raw newline in label value".into()),
                    Some((i, '"')) => break i,
                    Some(_) => {}
                }
            };
            s = &s[end + 1..];
            if let Some(rest) = s.strip_prefix(',') {
                s = rest;
            } else if !s.is_empty() {
                return Err(format!("junk after label value: {s:?}"));
            }
        }
        Ok(names)
    }

    /// A small validator for the exposition format, version 0.0.4: every line is a comment,
    /// a HELP or TYPE line, or `name{labels} value` with a valid name, label names, properly
    /// escaped label values and a Go float; no timestamps; each family's HELP and TYPE once,
    /// before its samples, and its samples contiguous; no sample twice.
    fn validate(text: &str) -> Result<usize, String> {
        use std::collections::HashSet;
        let mut seen_families: HashSet<String> = HashSet::new();
        let mut current: Option<String> = None;
        let mut typed: HashSet<String> = HashSet::new();
        let mut helped: HashSet<String> = HashSet::new();
        let mut series: HashSet<String> = HashSet::new();
        let mut samples = 0;
        if !text.ends_with('\n') {
            return Err("no final newline".into());
        }
        for (n, line) in text.lines().enumerate() {
            let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
            if let Some(rest) = line.strip_prefix("# ") {
                let mut parts = rest.splitn(3, ' ');
                let (word, name, tail) = (parts.next(), parts.next(), parts.next());
                let (Some(word @ ("HELP" | "TYPE")), Some(name)) = (word, name) else {
                    continue; // a plain comment
                };
                if !name_ok(name) {
                    return Err(err("bad metric name".into()));
                }
                if current.as_deref() != Some(name) {
                    if !seen_families.insert(name.to_string()) {
                        return Err(err("family not contiguous".into()));
                    }
                    current = Some(name.to_string());
                }
                let set = if word == "HELP" {
                    &mut helped
                } else {
                    &mut typed
                };
                if !set.insert(name.to_string()) {
                    return Err(err(format!("second {word}")));
                }
                if series.iter().any(|s| s.split('{').next() == Some(name)) {
                    return Err(err(format!("{word} after samples")));
                }
                if word == "TYPE" && tail != Some("gauge") {
                    return Err(err("only gauges are written".into()));
                }
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                return Err(err("unexpected line".into()));
            }
            let (name, rest) = match line.find('{') {
                Some(i) => (&line[..i], &line[i..]),
                None => line.split_at(line.find(' ').ok_or_else(|| err("no value".into()))?),
            };
            if !name_ok(name) {
                return Err(err("bad metric name".into()));
            }
            let (label_text, value_text) = if let Some(inner) = rest.strip_prefix('{') {
                let close = inner
                    .rfind("} ")
                    .ok_or_else(|| err("no closing brace".into()))?;
                (&inner[..close], &inner[close + 2..])
            } else {
                ("", rest.trim_start_matches(' '))
            };
            labels(label_text).map_err(err)?;
            if value_text.contains(' ') {
                return Err(err("a timestamp or junk after the value".into()));
            }
            if !float_ok(value_text) {
                return Err(err("bad value".into()));
            }
            if current.as_deref() != Some(name) {
                return Err(err("sample outside its family".into()));
            }
            if !typed.contains(name) || !helped.contains(name) {
                return Err(err("sample before HELP and TYPE".into()));
            }
            if !series.insert(format!("{name}{{{label_text}}}")) {
                return Err(err("duplicate series".into()));
            }
            samples += 1;
        }
        Ok(samples)
    }

    #[test]
    fn golden_output_with_hostile_names() {
        let fx = Fixture::new();
        let out = render(&fx.report());
        bless_or_compare("prometheus.prom", GOLDEN, &out);
    }

    #[test]
    fn every_line_parses() {
        let fx = Fixture::new();
        let out = render(&fx.report());
        let n = validate(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert!(n > 20, "{n} samples");
        assert!(!out
            .chars()
            .any(|c| c != '\n' && crate::escape::is_dangerous(c)));
        // No pid is a label value; no command line either.
        assert!(!out.contains("pid="), "{out}");
        assert!(!out.contains("artisan"), "{out}");
        let empty = Fixture::empty();
        let out = render(&empty.report());
        validate(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    }

    #[test]
    fn label_values_are_escaped_for_the_format() {
        assert_eq!(label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        // Untrusted names are escaped for people first, then for the format: a raw newline
        // or ESC never reaches the file, and invalid UTF-8 stays distinct.
        assert_eq!(untrusted("7\n\x1b"), "7\\\\n\\\\x1b");
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(untrusted(std::ffi::OsStr::from_bytes(b"r\xff")), "r\\\\xff");
        assert_eq!(value(f64::NAN), "NaN");
        assert_eq!(value(f64::INFINITY), "+Inf");
        assert_eq!(value(1_700_000_000.25), "1700000000.25");
        assert_eq!(value(3.0), "3");
    }

    #[test]
    fn the_validator_rejects_what_it_must() {
        let bad = [
            "# HELP a x\n# TYPE a gauge\na{b=\"x\ny\"} 1\n",
            "# HELP a x\n# TYPE a gauge\na 1 1700000000\n",
            "# HELP a x\n# TYPE a gauge\na{b=\"x\"} one\n",
            "# HELP a x\n# TYPE a gauge\na{b=\"x\",b=\"y\"} 1\n",
            "# HELP a x\n# TYPE a gauge\na{b=\"x\"} 1\na{b=\"x\"} 2\n",
            "# HELP a x\n# TYPE a gauge\na 1\n# HELP c x\n# TYPE c gauge\nc 1\na 2\n",
            "# HELP a x\n# TYPE a gauge\n1a 1\n",
            "# HELP a x\n# TYPE a counter\na 1\n",
            "a 1\n",
            "# HELP a x\n# TYPE a gauge\na{b=\"\\x\"} 1\n",
        ];
        for b in bad {
            assert!(validate(b).is_err(), "accepted {b:?}");
        }
    }

    /// The alert rules shipped in packaging/prometheus/ use only metrics this renderer
    /// writes and only kinds relwatch has: a renamed metric must not silence an alert.
    #[test]
    fn the_alert_rules_name_what_we_write() {
        let rules = include_str!("../../packaging/prometheus/relwatch.rules.yml");
        let out = render(&Fixture::new().report());
        let names = regex::Regex::new(r"\brelwatch_[a-z_]+\b").unwrap();
        let mut seen = 0;
        for line in rules
            .lines()
            .filter(|l| l.trim_start().starts_with("expr:"))
        {
            for m in names.find_iter(line) {
                assert!(
                    out.contains(&format!("# TYPE {} gauge", m.as_str())),
                    "{} in the rules is not written",
                    m.as_str()
                );
                seen += 1;
            }
        }
        assert!(seen >= 10, "{seen}");
        let kinds = regex::Regex::new(r#"kind="([a-z-]+)""#).unwrap();
        for c in kinds.captures_iter(rules) {
            let kind = &c[1];
            // restart-loop comes from the agent alone.
            assert!(
                kind == "restart-loop" || out.contains(&format!("kind=\"{kind}\"")),
                "kind {kind} in the rules is not written"
            );
        }
    }

    /// The textfiles of argument errors, from real clap errors: the same validator and
    /// promtool as a report, `relwatch_exit_code 3` and `relwatch_error 1`, and a hostile
    /// argument stays inside the comment.
    #[test]
    fn argument_errors_are_valid_textfiles() {
        use crate::cli::{usage_message, Cli, ErrorOutput};
        use clap::Parser;
        for argv in [
            &[
                "relwatch",
                "check",
                "--format",
                "prometheus",
                "--grace",
                "5",
            ][..],
            &[
                "relwatch",
                "check",
                "-o",
                "/x.prom",
                "-fprometheus",
                "--frobnicate",
            ],
            &[
                "relwatch",
                "check",
                "--format=prometheus",
                "--grace",
                "5\n# TYPE relwatch_exit_code counter\nrelwatch_exit_code 0",
            ],
        ] {
            let e = Cli::try_parse_from(argv).unwrap_err();
            let args: Vec<std::ffi::OsString> = argv.iter().map(Into::into).collect();
            let to = ErrorOutput::from_argv(&args);
            let message = crate::escape::visible(&usage_message(&e));
            assert_eq!(to.format, crate::cli::Format::Prometheus, "{argv:?}");
            let out = error(&message);
            assert_eq!(validate(&out), Ok(2), "{out}");
            assert!(out.contains("\nrelwatch_exit_code 3\n"), "{out}");
            assert!(out.contains("\nrelwatch_error 1\n"), "{out}");
            promtool::check_metrics(&out);
        }
        // A report says 0, so an alert on relwatch_error clears.
        let out = render(&Fixture::new().report());
        assert!(out.contains("\nrelwatch_error 0\n"), "{out}");
    }

    /// `promtool check metrics`, the same as the integration tests run.
    mod promtool {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/util/promtool.rs"
        ));
    }

    /// `promtool check metrics` and `promtool check rules`, when promtool is installed
    /// (Debian: the `prometheus` package).
    #[test]
    fn promtool_accepts_output_and_rules() {
        use std::process::Command;
        if !promtool::check_metrics(&render(&Fixture::new().report())) {
            return;
        }
        let rules = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/packaging/prometheus/relwatch.rules.yml"
        );
        let res = Command::new("promtool")
            .args(["check", "rules", rules])
            .output()
            .unwrap();
        assert!(
            res.status.success(),
            "promtool check rules: {}{}",
            String::from_utf8_lossy(&res.stdout),
            String::from_utf8_lossy(&res.stderr)
        );
    }

    #[test]
    fn two_roots_with_one_name_never_make_duplicate_series() {
        let mut fx = Fixture::new();
        let twin = fx.roots[0].clone();
        fx.roots.push(twin); // the same root given twice
        let out = render(&fx.report());
        validate(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    }

    /// Past the cap, the apps with the worst findings keep their series, the rest are left
    /// out and said so (a comment and `relwatch_roots_left_out`); under it nothing changes.
    #[test]
    fn series_are_capped_in_apps_worst_first_and_the_cap_is_said() {
        let fx = Fixture::new();
        let r = fx.report();
        assert_eq!(render_capped(&r, r.roots.len()), render(&r));
        assert!(!render(&r).contains("relwatch_roots_left_out"));
        // The first app with the worst severity of all.
        let top = r.findings.iter().map(|f| f.severity).max();
        let worst = r
            .findings
            .iter()
            .filter(|f| Some(f.severity) == top)
            .map(|f| f.app)
            .min()
            .expect("the fixture has findings");
        let out = render_capped(&r, 1);
        validate(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        let left_out = r.roots.len() - 1;
        assert!(
            out.contains(&format!("\nrelwatch_roots_left_out {left_out}\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "# relwatch: {left_out} of {} deploy roots left out",
                r.roots.len()
            )),
            "{out}"
        );
        for (i, root) in r.roots.iter().enumerate() {
            let label = format!("root=\"{}\"", untrusted(&root.root));
            assert_eq!(out.contains(&label), i == worst, "{i}: {out}");
        }
        // Every finding still counts in the exit code.
        assert!(
            out.contains(&format!("relwatch_exit_code {}", r.exit.code())),
            "{out}"
        );
    }
}
