//! `missing` (critical): fewer instances of a role on the current release than its `min`. The
//! incident: a queue that silently stopped, because nothing checked that its workers run.

use super::duplicate::instances;
use super::{Finding, Input, Kind, Severity};
use crate::attribution::ReleaseState;
use crate::escape::escape;

pub(super) fn check(input: &Input, out: &mut Vec<Finding>) {
    for (app, settings) in input.settings.apps.iter().enumerate() {
        let root = &input.roots[app];
        let Some(current) = root.current_release() else {
            continue; // broken-current says it all
        };
        for role in &settings.roles {
            let Some(min) = role.min.filter(|&m| m > 0) else {
                continue;
            };
            let all = instances(input, app, &role.name);
            let on_current: Vec<i32> = all
                .iter()
                .filter(|pl| pl.state == ReleaseState::Current)
                .map(|pl| pl.pid)
                .collect();
            if on_current.len() >= min {
                continue;
            }
            let elsewhere = all.len() - on_current.len();
            let also = if elsewhere > 0 {
                format!(", and {elsewhere} on other releases")
            } else {
                String::new()
            };
            let managed = all
                .iter()
                .find_map(|pl| input.owners.get(pl.pid))
                .map(|o| format!(" (its instances are managed by {})", o.label()))
                .unwrap_or_default();
            out.push(Finding {
                kind: Kind::Missing,
                severity: Severity::Critical,
                app,
                release: Some(current.into()),
                pids: on_current.clone(),
                master: None,
                owner: None,
                role: Some(role.name.clone()),
                message: format!(
                    "role {} has {} instance{} on current release {}, at least {min} expected{also}",
                    escape(&role.name),
                    on_current.len(),
                    if on_current.len() == 1 { "" } else { "s" },
                    escape(current)
                ),
                remedy: format!(
                    "start {} more {} worker{} from {}{managed}",
                    min - on_current.len(),
                    escape(&role.name),
                    if min - on_current.len() == 1 { "" } else { "s" },
                    escape(&root.link)
                ),
                evidence: Vec::new(),
            });
        }
    }
}
