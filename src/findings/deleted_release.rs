//! `deleted-release` (critical): a process runs from a release directory that no longer
//! exists (cwd, exe, a script path, or a `current/` path it resolved before every existing
//! release was made). This is the incident relwatch exists for: a master whose release was
//! cleaned up keeps running while every worker it spawns dies.

use super::{live_children, pname, tree_finding, trees, Finding, Input, Kind, Severity};
use crate::attribution::ReleaseState;
use crate::escape::escape;

pub(super) fn check(input: &Input, out: &mut Vec<Finding>) {
    for t in trees(input.attr, input.snap, ReleaseState::Deleted) {
        let pid = t.top.pid;
        let children = live_children(input.snap, pid);
        let release = match &t.top.release {
            Some(r) => format!("deleted release {}", escape(r)),
            None => "a deleted release".to_string(),
        };
        let message = if children > 0 {
            format!(
                "master pid {pid} ({}) pointing at a deleted directory: runs from {release}, {children} worker{}",
                pname(input.snap, pid),
                if children == 1 { "" } else { "s" }
            )
        } else {
            format!("pid {pid} ({}) runs from {release}", pname(input.snap, pid))
        };
        out.push(tree_finding(
            input,
            &t,
            Kind::DeletedRelease,
            Severity::Critical,
            message,
        ));
    }
}
