//! The systemd unit a process runs in, named by its cgroup path.
//!
//! The snapshot hands over the raw path (see [`crate::snapshot::parse::cgroup`]); this module
//! reads systemd's naming in it. The non-obvious facts: a unit's cgroup may have sub-cgroups
//! of its own (delegation), so the innermost unit on the path wins, and systemd escapes
//! names twice: `cg_escape` prefixes with `_` a name that would collide with a kernel file,
//! and `\xNN` stands for bytes such as `-` in a template instance.

use crate::escape::unescape_systemd;

/// What a systemd cgroup path says about the unit a process runs in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnitPath {
    /// The unit as systemd names it (what `systemctl` takes), e.g. `app@srv-shop\x2dnew.service`.
    pub unit: String,
    /// `user@UID.service` was on the path: a user service of UID.
    pub user: Option<u32>,
}

impl UnitPath {
    pub fn is_service(&self) -> bool {
        self.unit.ends_with(".service")
    }

    /// A login session (`session-N.scope`): the process was started by hand.
    pub fn is_session(&self) -> bool {
        self.unit.starts_with("session-") && self.unit.ends_with(".scope")
    }

    /// The unit name with systemd's `\xNN` escapes decoded, for people.
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&unescape_systemd(self.unit.as_bytes())).into_owned()
    }
}

/// The innermost `.service` or `.scope` on a cgroup path. Components that systemd's
/// `cg_escape` prefixed with `_` (names that would collide with kernel files) are unprefixed.
///
/// The first `user@UID.service` on the path is the user's service manager, and everything
/// below it is that user's, whatever it is named: systemd delegates that subtree to the user,
/// who may create any cgroup in it (`user@x.service/systemd-reboot.service` included). Only
/// root can make the cgroups above it, so only the outermost one is believed.
pub fn unit_of_cgroup(path: &[u8]) -> Option<UnitPath> {
    let mut unit = None;
    let mut user = None;
    for comp in path.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        let comp = comp.strip_prefix(b"_").unwrap_or(comp);
        let Ok(comp) = std::str::from_utf8(comp) else {
            continue;
        };
        let manager_of = comp
            .strip_prefix("user@")
            .and_then(|r| r.strip_suffix(".service"))
            .and_then(|uid| uid.parse::<u32>().ok());
        if user.is_none() && manager_of.is_some() {
            user = manager_of;
        }
        if (comp.ends_with(".service") || comp.ends_with(".scope")) && is_unit_name(comp) {
            unit = Some(comp.to_string());
        }
    }
    unit.map(|unit| UnitPath { unit, user })
}

/// A name systemd could have given a unit (systemd's `unit_name_is_valid`: at most 255 bytes of
/// `[A-Za-z0-9:_.\\@-]`, a name before the suffix, at most one `@`). Anything else on a cgroup
/// path was made by hand in a delegated subtree, and a remedy must never hand it to `systemctl`:
/// `--now.service` or `-H.service` would be read as an option. Such a cgroup names no unit; the
/// unit around it does.
fn is_unit_name(name: &str) -> bool {
    let stem = name.rsplit_once('.').map_or("", |(stem, _)| stem);
    name.len() <= 255
        && !stem.is_empty()
        && !name.starts_with('-')
        && name.matches('@').count() <= 1
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":_.\\@-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_from_paths() {
        let u = unit_of_cgroup(b"/system.slice/shop-queue.service").unwrap();
        assert_eq!(u.unit, "shop-queue.service");
        assert!(u.is_service() && !u.is_session());
        assert_eq!(u.user, None);

        let u =
            unit_of_cgroup(b"/user.slice/user-1000.slice/user@1000.service/app.slice/api.service")
                .unwrap();
        assert_eq!(u.unit, "api.service");
        assert_eq!(u.user, Some(1000));

        let u = unit_of_cgroup(b"/user.slice/user-1000.slice/session-3.scope").unwrap();
        assert!(u.is_session());
        assert_eq!(u.user, None);

        // a delegated sub-cgroup below the service still belongs to it
        let u = unit_of_cgroup(b"/system.slice/gunicorn.service/workers/w1").unwrap();
        assert_eq!(u.unit, "gunicorn.service");

        // escaped template instance: systemctl takes the escaped name, people read the other
        let u =
            unit_of_cgroup(br"/system.slice/system-app.slice/app@srv-shop\x2dnew.service").unwrap();
        assert_eq!(u.unit, r"app@srv-shop\x2dnew.service");
        assert_eq!(u.display(), "app@srv-shop-new.service");

        // cg_escape prefixes names that collide with kernel files
        assert_eq!(
            unit_of_cgroup(b"/system.slice/_cpu.service").unwrap().unit,
            "cpu.service"
        );

        assert_eq!(unit_of_cgroup(b"/"), None);

        // Names no unit has: an option-like or otherwise hand-made cgroup in a delegated
        // subtree names nothing; the unit around it does.
        let base = "/user.slice/user-1000.slice/user@1000.service/app.slice/api.service/";
        for fake in [
            "--now.service",
            "-H.service",
            ".service",
            "a b.service",
            "a;id.service",
            "x@y@z.service",
            "caf\u{e9}.service",
        ] {
            let u = unit_of_cgroup(format!("{base}{fake}").as_bytes()).unwrap();
            assert_eq!(u.unit, "api.service", "{fake}");
        }
        let long = format!("{}.service", "a".repeat(250));
        assert_eq!(
            unit_of_cgroup(format!("{base}{long}").as_bytes())
                .unwrap()
                .unit,
            "api.service"
        );
        assert_eq!(unit_of_cgroup(b"/system.slice/-.service"), None);

        // Regression: a user's own cgroup named `user@x.service` reset the scope to the
        // system's, and `systemctl restart systemd-reboot.service` was the remedy, as root.
        for inner in ["user@x.service", "user@0.service", "user@1001.service", "x"] {
            let path = format!(
                "/user.slice/user-1000.slice/user@1000.service/app.slice/{inner}/systemd-reboot.service"
            );
            let u = unit_of_cgroup(path.as_bytes()).unwrap();
            assert_eq!(u.unit, "systemd-reboot.service");
            assert_eq!(u.user, Some(1000), "{path}");
        }
        let u = unit_of_cgroup(b"/user.slice/user-1000.slice/user@1000.service").unwrap();
        assert_eq!((u.unit.as_str(), u.user), ("user@1000.service", Some(1000)));
        assert_eq!(unit_of_cgroup(b"/init.scope").unwrap().unit, "init.scope");
    }
}
