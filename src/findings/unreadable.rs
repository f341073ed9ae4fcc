//! `unreadable` (unknown): processes that may belong to an app (their command line names the
//! deploy root, or they run as the owner of the releases) but whose cwd and exe we may not
//! read. relwatch never answers OK over what it could not see.

use super::{Detail, Finding, Input, Remedy, Severity};

pub(super) fn check(input: &Input, out: &mut Vec<Finding>) {
    let finding = |app, hidepid| {
        Finding::new(
            Severity::Unknown,
            app,
            Detail::Unreadable { hidepid },
            Remedy::RunAsRoot,
        )
    };
    if input.snap.hidden_pids {
        // Other users' processes are not even listed: nothing can be counted, so say it once
        // per app rather than answer OK over them.
        out.extend((0..input.roots.len()).map(|app| finding(app, true)));
    }
    for app in 0..input.roots.len() {
        let pids: Vec<i32> = input
            .attr
            .unreadable
            .iter()
            .filter(|(_, a)| *a == app)
            .map(|(p, _)| *p)
            .collect();
        if !pids.is_empty() {
            out.push(Finding {
                pids,
                ..finding(app, false)
            });
        }
    }
}
