//! Report: renderers that only format (text, JSON, the `ps` tree, Nagios, Prometheus). Everything they print was decided by the rules; the
//! exit code comes from the worst severity. Every untrusted string goes through
//! [`crate::escape`] in text and through [`json::Bytes`] in JSON.

pub mod json;
pub mod nagios;
pub mod output;
pub mod prometheus;
pub mod text;
pub mod tree;

use crate::attribution::Attribution;
use crate::exit::ExitCode;
use crate::findings::{Finding, Kind};
use crate::layout::DeployRoot;
use crate::snapshot::Snapshot;

/// Everything one run of `check` found, ready to print.
pub struct Report<'a> {
    pub roots: &'a [DeployRoot],
    pub snap: &'a Snapshot,
    pub attr: &'a Attribution,
    pub owners: &'a crate::owner::Owners,
    pub findings: &'a [Finding],
    pub exit: ExitCode,
    /// How long the scan took, in seconds (for the Prometheus output).
    pub scan_seconds: f64,
}

impl Report<'_> {
    /// The one-line summary both renderers start with, without the status word.
    pub fn summary(&self) -> String {
        let count = |k: Kind| -> usize {
            self.findings
                .iter()
                .filter(|f| f.kind == k)
                .map(|f| f.pids.len().max(1))
                .sum()
        };
        let plural = |n: usize, one: &str, many: &str| {
            if n == 1 {
                format!("1 {one}")
            } else {
                format!("{n} {many}")
            }
        };
        let mut parts = Vec::new();
        let broken = self
            .findings
            .iter()
            .filter(|f| f.kind == Kind::BrokenCurrent)
            .count();
        if broken > 0 {
            parts.push(plural(
                broken,
                "broken current link",
                "broken current links",
            ));
        }
        let kinds = |k: Kind| self.findings.iter().filter(|f| f.kind == k).count();
        let duplicate = kinds(Kind::Duplicate);
        if duplicate > 0 {
            parts.push(plural(
                duplicate,
                "role with more instances than allowed (duplicate)",
                "roles with more instances than allowed (duplicate)",
            ));
        }
        let missing = kinds(Kind::Missing);
        if missing > 0 {
            parts.push(plural(
                missing,
                "role with too few instances on the current release (missing)",
                "roles with too few instances on the current release (missing)",
            ));
        }
        let deleted = count(Kind::DeletedRelease);
        if deleted > 0 {
            parts.push(plural(
                deleted,
                "process on a deleted release",
                "processes on deleted releases",
            ));
        }
        let old = count(Kind::OldRelease);
        if old > 0 {
            parts.push(plural(
                old,
                "process on an old release",
                "processes on old releases",
            ));
        }
        let zombies = count(Kind::Zombie)
            - self
                .findings
                .iter()
                .filter(|f| f.kind == Kind::Zombie)
                .count();
        if zombies > 0 {
            parts.push(plural(zombies, "zombie", "zombies"));
        }
        let orphans = count(Kind::Orphan);
        if orphans > 0 {
            parts.push(plural(orphans, "orphan", "orphans"));
        }
        let loops = kinds(Kind::RestartLoop);
        if loops > 0 {
            parts.push(plural(loops, "restart loop", "restart loops"));
        }
        let unreadable = count(Kind::Unreadable);
        if unreadable > 0 {
            parts.push(plural(
                unreadable,
                "process that could not be inspected",
                "processes that could not be inspected",
            ));
        }
        let scope = format!(
            "{}, {} scanned",
            plural(self.roots.len(), "app", "apps"),
            plural(self.snap.processes.len(), "process", "processes")
        );
        if parts.is_empty() {
            format!("every process runs the current release ({scope})")
        } else {
            format!("{} ({scope})", parts.join(", "))
        }
    }
}

/// What the agent writes to `--textfile DIR/relwatch.prom`.
pub fn textfile(r: &Report) -> String {
    prometheus::render(r)
}

/// One release of an app as the report shows it.
pub struct ReleaseRow<'a> {
    pub name: &'a std::ffi::OsStr,
    pub state: crate::attribution::ReleaseState,
    pub exists: bool,
    pub pids: Vec<i32>,
}

/// The releases of app `app`: existing ones (sorted by name), then deleted ones that
/// processes still use; with the pids placed on each.
pub fn releases_of<'a>(r: &'a Report, app: usize) -> Vec<ReleaseRow<'a>> {
    use crate::attribution::ReleaseState;
    let root = &r.roots[app];
    let mut rows: Vec<ReleaseRow> = root
        .releases
        .iter()
        .map(|rel| ReleaseRow {
            name: &rel.name,
            state: if root.current_release() == Some(rel.name.as_os_str()) {
                ReleaseState::Current
            } else if root.current_release().is_none() {
                ReleaseState::Unknown
            } else {
                ReleaseState::Old
            },
            exists: true,
            pids: Vec::new(),
        })
        .collect();
    for pl in r.attr.placements.iter().filter(|p| p.app == app) {
        let Some(name) = pl.release.as_deref() else {
            continue;
        };
        let deleted = pl.state == ReleaseState::Deleted;
        match rows
            .iter_mut()
            .find(|row| row.name == name && row.exists != deleted)
        {
            Some(row) => row.pids.push(pl.pid),
            None => rows.push(ReleaseRow {
                name,
                state: if deleted {
                    ReleaseState::Deleted
                } else {
                    ReleaseState::Old
                },
                exists: !deleted,
                pids: vec![pl.pid],
            }),
        }
    }
    rows
}
