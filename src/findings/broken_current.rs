//! `broken-current` (critical): the `current` link is missing, dangling, not a link, or points
//! outside the releases. Every new process started through it fails or runs the wrong code.

use super::{Finding, Input, Kind, Severity};
use crate::escape::escape;
use crate::layout::Current;

pub(super) fn check(input: &Input, out: &mut Vec<Finding>) {
    for (app, root) in input.roots.iter().enumerate() {
        let link = escape(&root.link);
        let message = match &root.current {
            Current::Ok { .. } => continue,
            Current::Missing => format!("{link} does not exist"),
            Current::NotALink => format!("{link} is not a symlink"),
            Current::Dangling { target } => {
                format!("{link} -> {} points at nothing", escape(target))
            }
            Current::NotADirectory { target } => {
                format!("{link} -> {} is not a directory", escape(target))
            }
            Current::OutsideReleases { target } => format!(
                "{link} -> {} points outside the releases directory {}",
                escape(target),
                root.releases_dir
                    .as_ref()
                    .map(escape)
                    .unwrap_or_else(|| "?".into())
            ),
        };
        let newest = root
            .releases
            .iter()
            .max_by(|a, b| {
                a.created
                    .unwrap_or(0.0)
                    .total_cmp(&b.created.unwrap_or(0.0))
                    .then(a.name.cmp(&b.name))
            })
            .map(|r| escape(&r.path));
        let remedy = match newest {
            Some(path) => format!(
                "point it at a release atomically, e.g. the newest: ln -sfn {path} {link}.new && mv -T {link}.new {link}"
            ),
            None => "no release exists: deploy again".to_string(),
        };
        out.push(Finding::about_app(
            Kind::BrokenCurrent,
            Severity::Critical,
            app,
            message,
            remedy,
        ));
    }
}
