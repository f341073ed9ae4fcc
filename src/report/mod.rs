//! Report: renderers that only lay out (text, JSON, the `ps` tree, Nagios, Prometheus). The
//! rules decided everything they print; [`words`] phrases it (sentences, remedies, severities,
//! durations, times, plurals, the summary and app header), the same for every renderer, and
//! the per-kind counts and series come from the kind table in `findings`. The exit code comes
//! from the worst severity. Untrusted strings are escaped by `words` (or [`crate::escape`])
//! for people and written losslessly by [`json::Bytes`] in JSON. Text and JSON are written
//! a piece at a time, never held whole.

#[cfg(test)]
mod golden;
pub mod in_use;
pub mod json;
pub mod nagios;
pub mod output;
pub mod prometheus;
pub mod text;
pub mod tree;
pub mod words;

use crate::attribution::Attribution;
use crate::exit::ExitCode;
use crate::findings::Finding;
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

impl<'a> Report<'a> {
    /// The report of `scan` over `roots`, its exit code from the worst finding.
    pub fn of(scan: &'a crate::scan::Scan, roots: &'a [DeployRoot], scan_seconds: f64) -> Self {
        Report {
            roots,
            snap: &scan.snap,
            attr: &scan.attr,
            owners: &scan.owners,
            findings: &scan.findings,
            exit: ExitCode::from_worst(crate::findings::worst(&scan.findings)),
            scan_seconds,
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
