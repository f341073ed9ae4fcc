//! What the agent says: one log line per finding that appeared, changed severity or cleared
//! between two scans, and the lines about itself. It never decides anything: it compares the
//! findings of consecutive scans by a [`FindingKey`] and phrases the difference.
//!
//! A finding's identity across scans is a [`FindingKey`]: kind, deploy root (its path: two
//! roots of one app name are two apps), release, role and, except for duplicate and missing
//! (which are about a group), the first pid it names. Lines name the app; when two watched
//! roots share its name they name the root too (`root=PATH`). Its message and
//! severity are not part of it, so a change of severity is logged as a change, not as a clear
//! and an appear.

use crate::escape::{escape, escape_bytes};
use crate::findings::{Finding, Kind, Severity};
use crate::layout::DeployRoot;
use crate::report::words;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::time::Instant;

/// Identity of a finding across scans. The field order is the order cleared lines are logged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct FindingKey {
    kind: Kind,
    root: std::path::PathBuf,
    /// The app's name, for the cleared line (the root decides identity).
    app: String,
    release: Option<Vec<u8>>,
    role: Option<String>,
    /// The first pid, for the kinds that are about one process.
    pid: Option<i32>,
}

impl FindingKey {
    fn of(roots: &[DeployRoot], f: &Finding) -> Self {
        FindingKey {
            kind: f.kind,
            root: roots.get(f.app).map(|r| r.root.clone()).unwrap_or_default(),
            app: app_label(roots, f.app),
            release: f.release.as_ref().map(|r| r.as_bytes().to_vec()),
            role: f.role.clone(),
            pid: f
                .pids
                .first()
                .copied()
                .filter(|_| f.kind.about().keyed_by_pid),
        }
    }
}

/// More findings than this of one kind, root, release and severity appearing (or clearing)
/// in one scan are one summary line.
const GROUP: usize = 3;

/// At most this many lines per kind and root within [`BUDGET_WINDOW`]; the rest are counted
/// and said in one line when the window ends: churn cannot flood the journal.
const BUDGET: usize = 20;
const BUDGET_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Findings that appear or clear together: kind, root, release (and severity, when they appear).
type Group = (Kind, std::path::PathBuf, Option<Vec<u8>>);

/// The findings of the last scan, by key, with the severity each had; and the line budgets.
#[derive(Default)]
pub(super) struct Known {
    last: BTreeMap<FindingKey, Severity>,
    budgets: BTreeMap<(Kind, std::path::PathBuf), Budget>,
}

/// The lines said about one kind and root within the current window, and those left out.
struct Budget {
    since: Instant,
    said: usize,
    left_out: usize,
    worst: Option<Severity>,
    app: String,
}

impl Known {
    /// Log what appeared, changed or cleared since the last scan, and remember this one.
    /// Many findings of one group in one scan are one line, and each kind and root has a line
    /// budget per minute (see [`GROUP`], [`BUDGET`]).
    pub(super) fn update(
        &mut self,
        roots: &[DeployRoot],
        findings: &[Finding],
        log: &Log,
        now: Instant,
    ) {
        let mut now_known: BTreeMap<FindingKey, Severity> = BTreeMap::new();
        let mut appeared: BTreeMap<(Group, Severity), Vec<&Finding>> = BTreeMap::new();
        for f in findings {
            let k = FindingKey::of(roots, f);
            match self.last.get(&k) {
                None => appeared.entry((k.group(), f.severity)).or_default().push(f),
                Some(s) if *s != f.severity => {
                    let text = format!(
                        "now {} {}",
                        words::severity(f.severity).upper,
                        describe(roots, f)
                    );
                    self.say(log, now, &k, Some(f.severity), &text);
                }
                Some(_) => {}
            }
            now_known.insert(k, f.severity);
        }
        for ((_, severity), group) in appeared {
            let k = FindingKey::of(roots, group[0]);
            let text = match group.len() {
                n if n > GROUP => appeared_many(roots, &group, n),
                _ => {
                    for f in &group {
                        let k = FindingKey::of(roots, f);
                        self.say(log, now, &k, Some(severity), &appeared_one(roots, f));
                    }
                    continue;
                }
            };
            self.say(log, now, &k, Some(severity), &text);
        }
        let mut gone: BTreeMap<Group, Vec<FindingKey>> = BTreeMap::new();
        for k in self.last.keys().filter(|k| !now_known.contains_key(*k)) {
            gone.entry(k.group()).or_default().push(k.clone());
        }
        for (_, keys) in gone {
            if keys.len() > GROUP {
                self.say(log, now, &keys[0], None, &cleared_many(&keys));
            } else {
                for k in &keys {
                    self.say(log, now, k, None, &cleared(k));
                }
            }
        }
        self.last = now_known;
        self.budgets.retain(|_, b| !b.ended(now, log));
    }

    /// The agent stops: say what each budget left out, whatever its window.
    pub(super) fn flush(&mut self, log: &Log) {
        for b in std::mem::take(&mut self.budgets).values() {
            b.say_left_out(log);
        }
    }

    /// One line about `k`'s kind and root, within its budget.
    fn say(
        &mut self,
        log: &Log,
        now: Instant,
        k: &FindingKey,
        severity: Option<Severity>,
        text: &str,
    ) {
        let b = self
            .budgets
            .entry((k.kind, k.root.clone()))
            .or_insert_with(|| Budget {
                since: now,
                said: 0,
                left_out: 0,
                worst: None,
                app: k.app.clone(),
            });
        if b.said < BUDGET {
            b.said += 1;
            log.line(severity, text);
        } else {
            b.left_out += 1;
            b.worst = b.worst.max(severity);
        }
    }
}

impl Budget {
    /// When its window is over: say what was left out, if anything. True when it ended.
    fn ended(&self, now: Instant, log: &Log) -> bool {
        if now.duration_since(self.since) < BUDGET_WINDOW {
            return false;
        }
        self.say_left_out(log);
        true
    }

    /// "left out 132 more lines about app=shop in the last 60s: ...", if any were.
    fn say_left_out(&self, log: &Log) {
        if self.left_out > 0 {
            log.line(
                self.worst,
                &format!(
                    "left out {} more line{} about app={} within {}s: it changes faster than a log can say",
                    self.left_out,
                    if self.left_out == 1 { "" } else { "s" },
                    self.app,
                    BUDGET_WINDOW.as_secs()
                ),
            );
        }
    }
}

impl FindingKey {
    fn group(&self) -> Group {
        (self.kind, self.root.clone(), self.release.clone())
    }
}

/// "appeared WARNING old-release app=shop release=1: ... | fix: ..."
fn appeared_one(roots: &[DeployRoot], f: &Finding) -> String {
    format!(
        "appeared {} {} | fix: {}",
        words::severity(f.severity).upper,
        describe(roots, f),
        words::remedy(f, &roots[f.app])
    )
}

/// "appeared 57 WARNING old-release findings (pids 4, 5, 6, 7, 8 and 52 more), the first:
/// old-release app=shop release=1: ... | fix: ..."
fn appeared_many(roots: &[DeployRoot], group: &[&Finding], n: usize) -> String {
    let f = group[0];
    let pids: Vec<i32> = group
        .iter()
        .filter_map(|f| f.pids.first().copied())
        .collect();
    format!(
        "appeared {n} {} {} findings ({}), the first: {} | fix: {}",
        words::severity(f.severity).upper,
        f.kind.as_str(),
        pid_list(&pids),
        describe(roots, f),
        words::remedy(f, &roots[f.app])
    )
}

/// "cleared 57 old-release app=shop release=1 (pids 4, 5, 6, 7, 8 and 52 more)"
fn cleared_many(keys: &[FindingKey]) -> String {
    let k = &keys[0];
    let release = k
        .release
        .as_ref()
        .map(|r| format!(" release={}", escape_bytes(r)))
        .unwrap_or_default();
    let pids: Vec<i32> = keys.iter().filter_map(|k| k.pid).collect();
    format!(
        "cleared {} {} app={}{release} ({})",
        keys.len(),
        k.kind.as_str(),
        k.app,
        pid_list(&pids)
    )
}

/// "pids 4, 5, 6, 7, 8 and 52 more"
fn pid_list(pids: &[i32]) -> String {
    const SHOWN: usize = 5;
    let shown: Vec<String> = pids.iter().take(SHOWN).map(|p| p.to_string()).collect();
    let more = pids.len().saturating_sub(SHOWN);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "pid{} {}{tail}",
        if pids.len() == 1 { "" } else { "s" },
        shown.join(", ")
    )
}

/// "deleted-release app=shop release=1: ..."
fn describe(roots: &[DeployRoot], f: &Finding) -> String {
    let release = f
        .release
        .as_ref()
        .map(|r| format!(" release={}", escape(r)))
        .unwrap_or_default();
    let role = f
        .role
        .as_ref()
        .map(|r| format!(" role={}", escape(r)))
        .unwrap_or_default();
    format!(
        "{} app={}{release}{role}: {}",
        f.kind.as_str(),
        app_label(roots, f.app),
        roots
            .get(f.app)
            .map(|root| words::message(f, root).to_string())
            .unwrap_or_default()
    )
}

/// "cleared deleted-release app=shop release=1 pid=4242"
fn cleared(k: &FindingKey) -> String {
    let release = k
        .release
        .as_ref()
        .map(|r| format!(" release={}", escape_bytes(r)))
        .unwrap_or_default();
    let pid = k.pid.map(|p| format!(" pid={p}")).unwrap_or_default();
    format!("cleared {} app={}{release}{pid}", k.kind.as_str(), k.app)
}

/// "shop", or "shop root=/srv/a/shop" when another watched root has the name shop too;
/// escaped.
fn app_label(roots: &[DeployRoot], app: usize) -> String {
    let Some(root) = roots.get(app) else {
        return "?".to_string();
    };
    if roots.iter().filter(|r| r.name == root.name).count() > 1 {
        format!("{} root={}", escape(&root.name), escape(&root.root))
    } else {
        escape(&root.name).to_string()
    }
}

/// Log lines go to stderr; under the journal (JOURNAL_STREAM set: our own environment, not a
/// process's) they carry a syslog priority prefix that journald understands.
pub(super) struct Log {
    journal: bool,
}

impl Log {
    pub(super) fn from_env() -> Self {
        Log {
            journal: std::env::var_os("JOURNAL_STREAM").is_some(),
        }
    }

    pub(super) fn line(&self, severity: Option<Severity>, text: &str) {
        let prefix = match (self.journal, severity) {
            (false, _) => "",
            (true, Some(Severity::Critical)) => "<2>",
            (true, Some(Severity::Warning | Severity::Unknown)) => "<4>",
            (true, Some(Severity::Info)) => "<6>",
            (true, None) => "<5>",
        };
        let _ = writeln!(std::io::stderr().lock(), "{prefix}relwatch: {text}");
    }
}
