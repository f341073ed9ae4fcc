//! Containers by their cgroup: a process in a container keeps the release its bind mount
//! resolved when the container started (`docker run -v /srv/app/current:/app`), so what
//! restarts it is the container, not anything inside it (a supervisord in the container is
//! not the host's; `supervisorctl` on the host would not reach it).
//!
//! Read from the systemd cgroup path (issue 20): Docker (`docker-ID.scope`, or `/docker/ID`
//! with the cgroupfs driver), containerd under Kubernetes (`cri-containerd-ID.scope`),
//! Podman (`libpod-ID.scope` with the systemd cgroup manager, `libpod-ID` below
//! `libpod_parent` or a `--cgroup-parent` with the cgroupfs one; never its `libpod-conmon-`
//! scope, nor the `conmon` cgroup beside the containers), systemd-nspawn
//! (`systemd-nspawn@NAME.service`, or a machine it registered, `machine-NAME.scope`: not
//! libvirt's `machine-qemu-…` and `machine-lxc-…` ones) and LXC (`lxc.payload.NAME`, or
//! `/lxc/NAME`). Only a
//! container of the system's managers counts: a cgroup at or below a `user@UID.service` is
//! the user's to name (issue 18), so nothing in it is taken for a container.

/// A container runtime relwatch names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    Docker,
    Containerd,
    Podman,
    Nspawn,
    /// A machine systemd-nspawn registered with systemd-machined, run without a unit of its
    /// own (`machine.slice/machine-NAME.scope`): `machinectl reboot NAME` starts it again.
    NspawnMachine,
    Lxc,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::Podman => "podman",
            Runtime::Nspawn | Runtime::NspawnMachine => "systemd-nspawn",
            Runtime::Lxc => "lxc",
        }
    }
}

/// A container: its runtime and its id (or name, for nspawn and LXC).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Container {
    pub runtime: Runtime,
    pub id: String,
}

/// An id as runtimes make them: 12 to 64 lowercase hex digits.
fn hex_id(s: &str) -> Option<String> {
    let ok = (12..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| s.to_ascii_lowercase())
}

/// A machine or container name: letters, digits and `-_.`, at most 64 bytes.
fn name(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then(|| s.to_owned())
}

/// The machine of systemd-machined's scope `machine-NAME.scope`, its name unescaped (a
/// `-` in it is `\x2d`). libvirt registers its virtual machines and containers there too
/// (`machine-qemu\x2d1\x2dweb.scope`, `machine-lxc\x2d…`): those are not nspawn's, and what
/// machinectl does to them is not a restart, so they name nothing.
fn machine(c: &str) -> Option<String> {
    let escaped = c.strip_prefix("machine-")?.strip_suffix(".scope")?;
    let n = name(&escaped.replace("\\x2d", "-"))?;
    (!n.starts_with("qemu-") && !n.starts_with("lxc-")).then_some(n)
}

/// The container a systemd cgroup path names, outermost first, if any (see the module docs).
pub fn of_cgroup(path: &[u8]) -> Option<Container> {
    let path = std::str::from_utf8(path).ok()?;
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if comps.iter().any(|c| c.starts_with("user@")) {
        return None;
    }
    let found = |runtime, id: Option<String>| id.map(|id| Container { runtime, id });
    for (i, c) in comps.iter().enumerate() {
        let scope = |prefix: &str| {
            c.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(".scope"))
                .and_then(hex_id)
        };
        let next = comps.get(i + 1).copied();
        let hit = match *c {
            "docker" => found(Runtime::Docker, next.and_then(hex_id)),
            "lxc" => found(Runtime::Lxc, next.and_then(name)),
            _ if c.starts_with("docker-") => found(Runtime::Docker, scope("docker-")),
            _ if c.starts_with("cri-containerd-") => {
                found(Runtime::Containerd, scope("cri-containerd-"))
            }
            _ if c.starts_with("libpod-conmon-") => None,
            _ if c.starts_with("libpod-") => {
                // Podman's cgroupfs manager names it without systemd's `.scope`.
                let r = &c["libpod-".len()..];
                found(
                    Runtime::Podman,
                    hex_id(r.strip_suffix(".scope").unwrap_or(r)),
                )
            }
            _ => c
                .strip_prefix("systemd-nspawn@")
                .and_then(|r| r.strip_suffix(".service"))
                .and_then(name)
                .map(|id| Container {
                    runtime: Runtime::Nspawn,
                    id,
                })
                .or_else(|| found(Runtime::NspawnMachine, machine(c)))
                .or_else(|| found(Runtime::Lxc, c.strip_prefix("lxc.payload.").and_then(name))),
        };
        if hit.is_some() {
            return hit;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c0ffee0ddba11deadbeef0123456789abcdef0123456789abcdef01234567";

    fn of(path: &str) -> Option<(Runtime, String)> {
        of_cgroup(path.as_bytes()).map(|c| (c.runtime, c.id))
    }

    #[test]
    fn runtimes_are_named_by_their_cgroups() {
        let id = || ID.to_owned();
        assert_eq!(
            of(&format!("/system.slice/docker-{ID}.scope")),
            Some((Runtime::Docker, id()))
        );
        assert_eq!(of(&format!("/docker/{ID}")), Some((Runtime::Docker, id())));
        assert_eq!(
            of(&format!("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-{ID}.scope")),
            Some((Runtime::Containerd, id()))
        );
        assert_eq!(
            of(&format!("/machine.slice/libpod-{ID}.scope/container")),
            Some((Runtime::Podman, id()))
        );
        // The cgroupfs manager (`--cgroup-manager cgroupfs`), under its default parent or a
        // `--cgroup-parent`, as rootful podman makes it where systemd does not run.
        assert_eq!(
            of(&format!("/libpod_parent/libpod-{ID}")),
            Some((Runtime::Podman, id()))
        );
        assert_eq!(
            of(&format!("/relwatch-test-1/libpod-{ID}")),
            Some((Runtime::Podman, id()))
        );
        assert_eq!(
            of(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
        // conmon, which podman's cgroupfs manager keeps beside the containers it watches.
        assert_eq!(of("/libpod_parent/conmon"), None);
        assert_eq!(of("/libpod_parent/libpod-notanid"), None);
        assert_eq!(of(&format!("/libpod_parent/libpod-{ID}.service")), None);
        assert_eq!(
            of("/machine.slice/systemd-nspawn@web.service/payload/system.slice/app.service"),
            Some((Runtime::Nspawn, "web".to_owned()))
        );
        assert_eq!(
            of("/lxc.payload.web1/system.slice"),
            Some((Runtime::Lxc, "web1".to_owned()))
        );
        assert_eq!(of("/lxc/web1"), Some((Runtime::Lxc, "web1".to_owned())));
    }

    /// A machine that `systemd-nspawn --register=yes` (no `--keep-unit`) made, as seen in
    /// tests/containers.rs; libvirt's machines are not nspawn's.
    #[test]
    fn a_registered_nspawn_machine_is_named_by_its_scope() {
        let machine = |n: &str| Some((Runtime::NspawnMachine, n.to_owned()));
        assert_eq!(
            of("/machine.slice/machine-holdbox.scope/payload"),
            machine("holdbox")
        );
        assert_eq!(
            of(r"/machine.slice/machine-web\x2d1.scope/payload"),
            machine("web-1")
        );
        assert_eq!(of(r"/machine.slice/machine-qemu\x2d1\x2dweb.scope"), None);
        assert_eq!(of(r"/machine.slice/machine-lxc\x2d42\x2dweb.scope"), None);
        assert_eq!(of(r"/machine.slice/machine-web\x7e.scope"), None);
        assert_eq!(of("/machine.slice/machine-.scope"), None);
        // Podman's pods live in machine slices, not machine scopes.
        assert_eq!(of("/machine.slice/machine-libpod_pod_4f1c.slice"), None);
    }

    #[test]
    fn anything_else_is_no_container() {
        assert_eq!(of("/system.slice/php-fpm.service"), None);
        assert_eq!(of("/system.slice/docker.service"), None);
        assert_eq!(of("/system.slice/docker-notanid.scope"), None);
        assert_eq!(of("/docker/x;rm -rf"), None);
        assert_eq!(of("/lxc/$(id)"), None);
        // A user's delegated subtree names what it likes: never a container of the system's.
        assert_eq!(
            of(&format!(
                "/user.slice/user-1000.slice/user@1000.service/app.slice/docker-{ID}.scope"
            )),
            None
        );
        assert_eq!(of(""), None);
    }
}
