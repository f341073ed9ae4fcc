//! `broken-current` (critical): the `current` link is missing, dangling, not a link, or points
//! outside the releases. Every new process started through it fails or runs the wrong code.
//! How it is broken is the app's [`Current`]; the rule adds the fix: point it at the newest
//! release, atomically.

use super::{Detail, Finding, Input, Remedy, Severity};
use crate::layout::Current;
use crate::owner::remedy::{Arg, Command};
use std::path::Path;

pub(super) fn check(input: &Input, out: &mut Vec<Finding>) {
    for (app, root) in input.roots.iter().enumerate() {
        if let Current::Ok { .. } = root.current {
            continue;
        }
        let newest = root.releases.iter().max_by(|a, b| {
            a.created
                .unwrap_or(0.0)
                .total_cmp(&b.created.unwrap_or(0.0))
                .then(a.name.cmp(&b.name))
        });
        let remedy = match newest {
            Some(release) => Remedy::FixLink(Box::new(relink(&release.path, &root.link))),
            None => Remedy::DeployAgain,
        };
        out.push(Finding::new(
            Severity::Critical,
            app,
            Detail::BrokenCurrent,
            remedy,
        ));
    }
}

/// `ln -sfn RELEASE LINK.new`, then `mv -T LINK.new LINK`: a rename replaces the link in one
/// step, so no process ever finds it missing.
fn relink(release: &Path, link: &Path) -> [Command; 2] {
    let mut new = link.as_os_str().to_owned();
    new.push(".new");
    [
        Command::new(
            "ln",
            [Arg::Word("-sfn"), Arg::name(release), Arg::name(&new)],
        ),
        Command::new("mv", [Arg::Word("-T"), Arg::name(&new), Arg::name(link)]),
    ]
}
