//! The text renderer: what an operator reads over SSH. One summary line, then per app the
//! findings (master before its workers, each process with what placed it there and the fix),
//! then the releases with their process counts. Color only when asked for by the caller
//! (a terminal without `NO_COLOR`); every untrusted string is escaped.

use super::{releases_of, words, Report};
use crate::attribution::ReleaseState;
use crate::escape::escape;
use crate::findings::Finding;
use std::fmt::Write;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

/// The whole report as one string (tests, small outputs).
pub fn render(r: &Report, style: Style) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and every piece written is a `String`.
    let _ = write(r, style, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Write the report to `w` a piece at a time (an app's header, a finding, its releases): a
/// report on 20,000 processes is never held whole in memory.
pub fn write(r: &Report, style: Style, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "relwatch {}: {}",
        words::bold(style.color, r.exit.label()),
        words::summary(r)
    );
    for (app, root) in r.roots.iter().enumerate() {
        out.push('\n');
        let _ = writeln!(
            out,
            "{}",
            words::app_header(root, Some(r.snap.clock.now), style.color)
        );
        for f in r.findings.iter().filter(|f| f.app == app) {
            w.write_all(out.as_bytes())?;
            out.clear();
            finding(&mut out, r, f, style);
        }
        for row in releases_of(r, app) {
            let label = match row.state {
                ReleaseState::Current => " (current)",
                ReleaseState::Deleted => " (deleted)",
                _ => "",
            };
            if row.pids.is_empty() && row.state != ReleaseState::Current {
                continue;
            }
            let n = row.pids.len();
            let _ = writeln!(
                out,
                "  release {}{label}: {}",
                escape(row.name),
                words::count(n, "process", "processes")
            );
        }
        if root.truncated {
            let _ = writeln!(
                out,
                "  note: the releases directory holds more than {} entries; only that many were read",
                crate::layout::MAX_RELEASES
            );
        }
        w.write_all(out.as_bytes())?;
        out.clear();
    }
    w.write_all(out.as_bytes())
}

fn finding(out: &mut String, r: &Report, f: &Finding, style: Style) {
    let release = f
        .release
        .as_ref()
        .map(|rel| format!("  release {}", escape(rel)))
        .unwrap_or_default();
    let role = f
        .role
        .as_ref()
        .map(|r| format!("  role {}", escape(r)))
        .unwrap_or_default();
    let severity = words::severity(f.severity);
    let root = &r.roots[f.app];
    let _ = writeln!(
        out,
        "  {} {}{release}{role}",
        words::paint(style.color, severity.color, severity.text),
        f.kind.as_str()
    );
    let _ = writeln!(out, "    {}", words::message(f, root));
    if let Some(owner) = &f.owner {
        let _ = writeln!(out, "    owner: {owner}");
    }
    for (i, pid) in f.pids.iter().enumerate() {
        let Some(p) = r.snap.get(*pid) else { continue };
        if i >= 20 {
            let _ = writeln!(out, "      ... and {} more", f.pids.len() - i);
            break;
        }
        let indent = if i == 0 || f.master.is_none() {
            ""
        } else {
            "  "
        };
        let why = f
            .evidence
            .iter()
            .find(|e| e.pid == *pid)
            .map(|e| super::words::evidence(e))
            .unwrap_or_default();
        // The uid on every row: whose process a remedy would end (issue 18).
        let uid = format!("uid {}", p.uid);
        let _ = writeln!(
            out,
            "      {indent}{:<7} {:<16} {uid:<9} {why}",
            pid,
            escape(p.name())
        );
    }
    let _ = writeln!(out, "    fix: {}", words::remedy(f, root));
}
