//! `missing` (critical): fewer instances of a role on the current release than its `min`. The
//! incident: a queue that silently stopped, because nothing checked that its workers run.

use super::duplicate::instances;
use super::{Detail, Finding, Input, Remedy, Severity};
use crate::attribution::ReleaseState;

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
            let detail = Detail::Missing {
                min,
                elsewhere: all.len() - on_current.len(),
            };
            let remedy = Remedy::StartMore {
                count: min - on_current.len(),
                managed_by: all
                    .iter()
                    .find_map(|pl| input.owners.supervisor_label(pl.pid)),
            };
            out.push(Finding {
                release: Some(current.into()),
                pids: on_current,
                role: Some(role.name.clone()),
                ..Finding::new(Severity::Critical, app, detail, remedy)
            });
        }
    }
}
