//! The text renderer: what an operator reads over SSH. One summary line, then per app the
//! findings (master before its workers, each process with what placed it there and the fix),
//! then the releases with their process counts. Color only when asked for by the caller
//! (a terminal without `NO_COLOR`); every untrusted string is escaped.

use super::{releases_of, Report};
use crate::attribution::{human_duration, ReleaseState};
use crate::escape::escape;
use crate::findings::{Finding, Severity};
use std::fmt::Write;

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn severity(&self, s: Severity) -> String {
        let (code, label) = match s {
            Severity::Critical => ("1;31", "CRITICAL"),
            Severity::Warning => ("1;33", "WARNING"),
            Severity::Unknown => ("1;35", "UNKNOWN"),
            Severity::Info => ("36", "info"),
        };
        self.paint(code, label)
    }

    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
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
        style.bold(r.exit.label()),
        r.summary()
    );
    for (app, root) in r.roots.iter().enumerate() {
        out.push('\n');
        let current = match root.current_release() {
            Some(c) => format!("current {}", escape(c)),
            None => format!("current link {}", root.current.state_name()),
        };
        let switched = match root.switch_time {
            Some(t) => format!(
                ", switched {} ({} ago)",
                format_time(t),
                human_duration(r.snap.clock.now - t)
            ),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{}  {}  {current}{switched}",
            style.bold(&escape(&root.name)),
            escape(&root.root),
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
                "  release {}{label}: {n} process{}",
                escape(row.name),
                if n == 1 { "" } else { "es" }
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
    let _ = writeln!(
        out,
        "  {} {}{release}{role}",
        style.severity(f.severity),
        f.kind.as_str()
    );
    let _ = writeln!(out, "    {}", f.message);
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
            .map(|e| e.detail())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "      {indent}{:<7} {:<16} {why}",
            pid,
            escape(p.name())
        );
    }
    let _ = writeln!(out, "    fix: {}", f.remedy);
}

/// `2026-11-21 12:00:03 UTC`
pub fn format_time(epoch: f64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(epoch.max(0.0));
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}
