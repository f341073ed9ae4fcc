//! `deleted-release` (critical): a process runs from a release directory that no longer
//! exists (cwd, exe, a script path, or a `current/` path it resolved before every existing
//! release was made). This is the incident relwatch exists for: a master whose release was
//! cleaned up keeps running while every worker it spawns dies.

use super::{proc_of, tree_finding, trees, workers, Detail, Finding, Input, Severity};
use crate::attribution::ReleaseState;

pub(super) fn check(input: &Input, out: &mut Vec<Finding>) {
    for t in trees(input.attr, input.snap, ReleaseState::Deleted) {
        let pid = t.top.pid;
        let detail = Detail::DeletedRelease {
            top: proc_of(input.snap, pid),
            workers: workers(&t),
            dying: input.attr.reaping.contains(&pid),
        };
        out.push(tree_finding(input, &t, Severity::Critical, detail));
    }
}
