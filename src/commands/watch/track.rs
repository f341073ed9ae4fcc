//! What the agent does with process events: it feeds the restart [`History`] the forks, execs
//! and exits that matter, and nothing else. A fork matters when its parent is a placed process
//! or the parent of one (a master, a supervisord); an exec when the new program's cwd is a
//! release directory of a watched root (a worker started before any scan saw one of its
//! kind); an exit when the process was tracked. Every other event on the host costs a hash
//! lookup (and an exec, one `stat` of its cwd). A restart is a young end followed by a fork of
//! the same parent (see [`History::track`]).
//!
//! The reads here are a few small files of one live process, bounded like every other read:
//! `/proc/PID/stat` for its parent, and from `/proc/PID/environ` only the two supervisord keys
//! that name its program (no other value is kept).

use crate::events::Event;
use crate::findings::restart_loop::{Belongs, History};
use crate::layout::DeployRoot;
use crate::owner::{Owner, Supervisor};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;

/// The release directories of the watched roots, by (device, inode): which app a cwd is in.
#[derive(Default)]
pub(super) struct Releases(HashMap<(u64, u64), usize>);

impl Releases {
    pub(super) fn of(roots: &[DeployRoot]) -> Self {
        let mut ids = HashMap::new();
        for (app, root) in roots.iter().enumerate() {
            for r in &root.releases {
                ids.entry((r.dev, r.ino)).or_insert(app);
            }
        }
        Releases(ids)
    }

    /// The app whose release `pid`'s cwd is, if any.
    fn app_of(&self, pid: i32) -> Option<usize> {
        let m = std::fs::metadata(format!("/proc/{pid}/cwd")).ok()?;
        self.0.get(&(m.dev(), m.ino())).copied()
    }
}

/// How many tracked processes started (forked by a tracked parent, or exec'd into a release)
/// and ended: what the log summarises instead of a line per event.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    pub(super) started: usize,
    pub(super) ended: usize,
}

impl Tally {
    pub(super) fn is_empty(&self) -> bool {
        *self == Tally::default()
    }
}

/// Feed `events` to `history`, counting them in `tally`; `now` is the wall clock. True when a
/// restart was confirmed (the loops may have changed).
pub(super) fn apply(
    history: &mut History,
    releases: &Releases,
    events: &[Event],
    now: f64,
    tally: &mut Tally,
) -> bool {
    let mut young = false;
    for ev in events.iter().filter(|e| e.is_process()) {
        match *ev {
            Event::Fork {
                at_ns,
                parent_tgid,
                child_tgid,
                ..
            } => {
                if let Some(b) = history.of_parent(parent_tgid).cloned() {
                    tally.started += 1;
                    young |= history.track(child_tgid, parent_tgid, b, Some(at_ns), now);
                }
            }
            Event::Exec { at_ns, tgid, .. } => {
                if history.is_tracked(tgid) {
                    continue;
                }
                let Some(app) = releases.app_of(tgid) else {
                    continue;
                };
                let (ppid, label) = parent_and_label(tgid);
                // A tracked worker's own child (a `sleep` in its script) is no restart.
                if ppid.is_some_and(|p| history.is_tracked(p)) {
                    continue;
                }
                let b = Belongs {
                    group: (app, None),
                    label,
                };
                let parent = ppid.unwrap_or(0);
                // Both may restart processes: its parent (a supervisor) and itself (a master).
                history.adopt_parent(parent, b.clone());
                history.adopt_parent(tgid, b.clone());
                tally.started += 1;
                young |= history.track(tgid, parent, b, Some(at_ns), now);
            }
            Event::Exit {
                at_ns,
                tgid,
                status,
                ..
            } => {
                if history.is_tracked(tgid) {
                    tally.ended += 1;
                }
                history.exited(tgid, status, at_ns, now)
            }
            Event::Overrun => {}
        }
    }
    young
}

/// The parent of `pid` and, when it carries supervisord's keys, the owner label naming its
/// program (as a scan's owners would).
fn parent_and_label(pid: i32) -> (Option<i32>, Option<std::sync::Arc<str>>) {
    let Ok(stat) = std::fs::read(format!("/proc/{pid}/stat")) else {
        return (None, None);
    };
    let Ok(ppid) = crate::snapshot::parse::stat::parse_stat(&stat).map(|s| s.ppid) else {
        return (None, None);
    };
    let keys = ["SUPERVISOR_PROCESS_NAME", "SUPERVISOR_GROUP_NAME"];
    let env = read_bounded(&format!("/proc/{pid}/environ"));
    let found = crate::snapshot::parse::environ::environ_keys(&env, &keys);
    let get = |k: &str| {
        found
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    };
    let label = get(keys[0]).map(|name| {
        let program = match get(keys[1]) {
            Some(g) => format!("{g}:{name}"),
            None => name,
        };
        Owner {
            supervisor: Supervisor::Supervisord {
                pid: ppid,
                program: Some(program),
            },
            unit: None,
            supervisor_enabled: true,
        }
        .label()
        .into()
    });
    (Some(ppid), label)
}

/// At most 256 KiB of a /proc file: an environment can be huge.
fn read_bounded(path: &str) -> Vec<u8> {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(256 * 1024).read_to_end(&mut buf);
    }
    buf
}
