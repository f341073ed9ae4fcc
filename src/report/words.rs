//! Words: the small words around findings (severities, durations, times, plurals, the app
//! header, the summary line), made here and nowhere else. Renderers and commands lay out what
//! this module writes. Every untrusted string is escaped here with [`escape`].

use super::Report;
use crate::escape::escape;
use crate::findings::{Kind, Severity};
use crate::layout::DeployRoot;
use std::fmt::Write;

pub use crate::attribution::human_duration;

/// `one` for 1, `many` for any other number: `plural(n, "", "s")`.
pub fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// "1 app", "3 apps".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", plural(n, one, many))
}

/// `2026-11-21 12:00:03 UTC`
pub fn format_time(epoch: f64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(epoch.max(0.0));
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}

/// How a severity is written.
pub struct SeverityWords {
    /// In JSON and metric labels.
    pub name: &'static str,
    /// In Nagios lines and the agent's log.
    pub upper: &'static str,
    /// In the text report: information is not shouted.
    pub text: &'static str,
    /// The SGR color of `text` on a terminal.
    pub color: &'static str,
}

pub fn severity(s: Severity) -> &'static SeverityWords {
    const fn words(
        name: &'static str,
        upper: &'static str,
        text: &'static str,
        color: &'static str,
    ) -> SeverityWords {
        SeverityWords {
            name,
            upper,
            text,
            color,
        }
    }
    // In the order of `Severity`.
    static WORDS: [SeverityWords; 4] = [
        words("info", "INFO", "info", "36"),
        words("warning", "WARNING", "WARNING", "1;33"),
        words("unknown", "UNKNOWN", "UNKNOWN", "1;35"),
        words("critical", "CRITICAL", "CRITICAL", "1;31"),
    ];
    &WORDS[s as usize]
}

/// `text` in SGR color `code` when `color`, else as it is.
pub fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// `text` in bold when `color`.
pub fn bold(color: bool, text: &str) -> String {
    paint(color, "1", text)
}

/// The one-line summary every report starts with, without the status word.
pub fn summary(r: &Report) -> String {
    let parts: Vec<String> = Kind::ordered_by(|a| Some(a.summary_place))
        .into_iter()
        .map(|about| (about, about.tally(r.findings)))
        .filter(|&(_, n)| n > 0)
        .map(|(about, n)| count(n, about.one, about.many))
        .collect();
    let scope = format!(
        "{}, {} scanned",
        count(r.roots.len(), "app", "apps"),
        count(r.snap.processes.len(), "process", "processes")
    );
    if parts.is_empty() {
        format!("every process runs the current release ({scope})")
    } else {
        format!("{} ({scope})", parts.join(", "))
    }
}

/// Where the app's link points: `"{noun} 67"`, or `current link dangling` when broken.
pub fn current(root: &DeployRoot, noun: &str) -> String {
    match root.current_release() {
        Some(c) => format!("{noun} {}", escape(c)),
        None => format!("current link {}", root.current.state_name()),
    }
}

/// `shop  /srv/shop  current 67`, with `, switched <time> (<age> ago)` when `now` is given and
/// the switch time known, and the name in bold when `color`.
pub fn app_header(root: &DeployRoot, now: Option<f64>, color: bool) -> String {
    let mut out = format!(
        "{}  {}  {}",
        bold(color, &escape(&root.name)),
        escape(&root.root),
        current(root, "current")
    );
    if let (Some(now), Some(t)) = (now, root.switch_time) {
        let _ = write!(
            out,
            ", switched {} ({} ago)",
            format_time(t),
            human_duration(now - t)
        );
    }
    out
}
