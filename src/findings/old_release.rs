//! `old-release`: a process runs an existing release that is not current, or started before
//! the switch while referring to `current/`. Information during the grace period after a
//! switch (workers are still being restarted), a warning after it.

use super::Switched;
use super::{proc_of, tree_finding, trees, workers, Detail, Finding, Input, Severity};
use crate::attribution::ReleaseState;

pub(super) fn check(input: &Input, out: &mut Vec<Finding>) {
    let now = input.snap.clock.now;
    for t in trees(input.attr, input.snap, ReleaseState::Old) {
        let pid = t.top.pid;
        let root = &input.roots[t.top.app];
        let grace = input.settings.grace(t.top.app).as_secs_f64();
        let switched = root.switch_time.map(|s| {
            let ago = now - s;
            Switched {
                ago,
                within_grace: (ago < grace).then_some(grace),
            }
        });
        let severity = match switched {
            Some(Switched {
                within_grace: Some(_),
                ..
            }) => Severity::Info,
            _ => Severity::Warning,
        };
        let detail = Detail::OldRelease {
            top: proc_of(input.snap, pid),
            workers: workers(&t),
            dying: input.attr.reaping.contains(&pid),
            switched,
        };
        out.push(tree_finding(input, &t, severity, detail));
    }
}
