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

/// The findings of the last scan, by key, with the severity each had.
#[derive(Default)]
pub(super) struct Known(BTreeMap<FindingKey, Severity>);

impl Known {
    /// Log what appeared, changed or cleared since the last scan, and remember this one.
    pub(super) fn update(&mut self, roots: &[DeployRoot], findings: &[Finding], log: &Log) {
        let mut now_known: BTreeMap<FindingKey, Severity> = BTreeMap::new();
        for f in findings {
            let k = FindingKey::of(roots, f);
            match self.0.get(&k) {
                None => log.line(
                    Some(f.severity),
                    &format!(
                        "appeared {} {} | fix: {}",
                        words::severity(f.severity).upper,
                        describe(roots, f),
                        words::remedy(f, &roots[f.app])
                    ),
                ),
                Some(s) if *s != f.severity => log.line(
                    Some(f.severity),
                    &format!(
                        "now {} {}",
                        words::severity(f.severity).upper,
                        describe(roots, f)
                    ),
                ),
                Some(_) => {}
            }
            now_known.insert(k, f.severity);
        }
        for k in self.0.keys().filter(|k| !now_known.contains_key(*k)) {
            log.line(None, &cleared(k));
        }
        self.0 = now_known;
    }
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
