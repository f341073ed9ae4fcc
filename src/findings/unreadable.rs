//! `unreadable` (unknown): processes that may belong to an app (their command line names the
//! deploy root, or they run as the owner of the releases) but whose cwd and exe we may not
//! read. relwatch never answers OK over what it could not see.

use super::{Finding, Input, Kind, Severity};

pub(super) fn check(input: &Input, out: &mut Vec<Finding>) {
    if input.snap.hidden_pids {
        // Other users' processes are not even listed: nothing can be counted, so say it once
        // per app rather than answer OK over them.
        for app in 0..input.roots.len() {
            out.push(Finding::about_app(
                Kind::Unreadable,
                Severity::Unknown,
                app,
                "/proc is mounted with hidepid= (or subset=pid): other users' processes are not even listed, so any of them may run an old or deleted release".to_string(),
                "run relwatch as root, or grant it CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH".to_string(),
            ));
        }
    }
    for (app, _root) in input.roots.iter().enumerate() {
        let pids: Vec<i32> = input
            .attr
            .unreadable
            .iter()
            .filter(|(_, a)| *a == app)
            .map(|(p, _)| *p)
            .collect();
        if pids.is_empty() {
            continue;
        }
        let shown: Vec<String> = pids.iter().take(10).map(|p| p.to_string()).collect();
        out.push(Finding {
            kind: Kind::Unreadable,
            severity: Severity::Unknown,
            app,
            release: None,
            message: format!(
                "{} process{} that may belong to this app could not be inspected (permission denied): pid {}{}",
                pids.len(),
                if pids.len() == 1 { "" } else { "es" },
                shown.join(", "),
                if pids.len() > 10 { ", ..." } else { "" }
            ),
            pids,
            master: None,
            owner: None,
            role: None,
            remedy: "run relwatch as root, or grant it CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH".to_string(),
            evidence: Vec::new(),
        });
    }
}
