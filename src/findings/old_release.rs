//! `old-release`: a process runs an existing release that is not current, or started before
//! the switch while referring to `current/`. Information during the grace period after a
//! switch (workers are still being restarted), a warning after it.

use super::{live_children, pname, tree_finding, trees, Finding, Input, Kind, Severity};
use crate::attribution::{human_duration, ReleaseState};
use crate::escape::escape;

pub(super) fn check(input: &Input, out: &mut Vec<Finding>) {
    let now = input.snap.clock.now;
    for t in trees(input.attr, input.snap, ReleaseState::Old) {
        let pid = t.top.pid;
        let root = &input.roots[t.top.app];
        let grace = input.settings.grace(t.top.app).as_secs_f64();
        let since = root.switch_time.map(|s| now - s);
        let severity = match since {
            Some(s) if s < grace => Severity::Info,
            _ => Severity::Warning,
        };
        let current = root
            .current_release()
            .map(escape)
            .unwrap_or_else(|| "?".into());
        let release = match &t.top.release {
            Some(r) => format!("old release {}", escape(r)),
            None => "the release that was current before the switch".to_string(),
        };
        let children = live_children(input.snap, pid);
        let who = if children > 0 {
            format!(
                "master pid {pid} ({}) with {children} worker{}",
                pname(input.snap, pid),
                if children == 1 { "" } else { "s" }
            )
        } else {
            format!("pid {pid} ({})", pname(input.snap, pid))
        };
        let when = match since {
            Some(s) if severity == Severity::Info => format!(
                "switched {} ago, within the {} grace period",
                human_duration(s),
                human_duration(grace)
            ),
            Some(s) => format!("switched {} ago", human_duration(s)),
            None => String::new(),
        };
        let message = format!("{who} runs {release}, not current {current} ({when})");
        out.push(tree_finding(input, &t, Kind::OldRelease, severity, message));
    }
}
