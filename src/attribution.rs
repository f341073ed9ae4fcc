//! Attribution: each process gets at most one (app, release), with the evidence that placed it.
//!
//! Evidence, strongest first:
//! - `cwd`: the working directory, matched by identity `(st_dev, st_ino)` against the release
//!   directories (survives bind mounts and odd spellings), else by path; a deleted directory is
//!   known by its link count, never by the `" (deleted)"` suffix alone;
//! - `exe`: the executable lies inside a release;
//! - `script`: an absolute path in the command line (or one relative to the cwd) goes straight
//!   into a release directory;
//! - `via-current`: a command-line path goes through the `current` link. Such a path is never
//!   re-resolved now: the process runs whatever release was current when it started, so its
//!   start time is compared with the switch time, and the switch history (the deploy tool's
//!   log, else birth times: [`crate::layout::history`]) says which release was current then.
//!
//! What the process holds now or names itself (cwd, exe, script) decides, the worst of them
//! when they disagree (deleted, then old): an operator wants to know that a process touches an
//! old release at all. The start-time inference through `current` decides only when nothing
//! else names a release (see [`decide`] and docs/ATTRIBUTION.md). Everything here is pure: the
//! only reads are the snapshot and the layout, plus `lstat` of a release path a command line
//! names that the layout did not list (a rare case).

use crate::layout::history::{Source, Timeline};
use crate::layout::{DeployRoot, NOT_RELEASES};
use crate::snapshot::{Link, Process, Snapshot};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A release name, shared by every process and finding that names it (one allocation per
/// release, not two per process).
pub type Name = std::sync::Arc<OsStr>;

/// How a piece of evidence was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Cwd,
    Exe,
    Script,
    ViaCurrent,
    /// A file mapped into the process (`/proc/PID/maps`): a shared library, a C extension.
    MappedFile,
    /// A file the process holds open (`/proc/PID/fd`): a log, a database, a cache.
    OpenFile,
    /// An interpreter's module path (`PYTHONPATH`, `RUBYLIB`, ...) names a release.
    InterpreterPath,
    /// Nothing of its own names a release: the master that forked it does (see
    /// [`inherit_from_masters`]).
    Master,
}

impl How {
    pub fn as_str(self) -> &'static str {
        match self {
            How::Cwd => "cwd",
            How::Exe => "exe",
            How::Script => "script",
            How::ViaCurrent => "via-current",
            How::MappedFile => "mapped-file",
            How::OpenFile => "open-file",
            How::InterpreterPath => "interpreter-path",
            How::Master => "master",
        }
    }
}

/// Something a process holds beyond its cwd and exe, read by `crate::holds` for the
/// processes the cheap pass could not place: placed like a cwd or exe link (see
/// [`attribute_held`]).
#[derive(Debug, Clone)]
pub struct Held {
    pub how: How,
    /// The path held, as a link: text, and identity and link count where known. For an
    /// interpreter path only the release directory the value names (never the value itself).
    pub link: Link,
    /// The environment key that named it ([`How::InterpreterPath`]).
    pub key: Option<&'static str>,
    /// Read in another mount namespace and translated to ours through its mounts, its
    /// identity checked (see [`Wording::Mount`]).
    pub through_mounts: bool,
}

/// Where a process stands relative to `current`. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReleaseState {
    Current,
    /// The current link is broken, so old and current cannot be told apart.
    Unknown,
    Old,
    Deleted,
}

impl ReleaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseState::Current => "current",
            ReleaseState::Unknown => "unknown",
            ReleaseState::Old => "old",
            ReleaseState::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub pid: i32,
    pub how: How,
    /// The path read (link target without the kernel's suffix, or the command-line argument),
    /// shared with the process's link where it is one.
    pub path: Option<std::sync::Arc<OsStr>>,
    /// The object behind the path is gone.
    pub deleted: bool,
    /// The release this evidence points at, when it can be named.
    pub release: Option<Name>,
    pub state: ReleaseState,
    /// What to say about it (`report::words::evidence` says it).
    pub wording: Wording,
}

/// How the evidence is put into words (`report::words::evidence`). Sentences that only repeat
/// the evidence's own fields are made when they are shown, not for every process placed (a scan
/// of 20,000 processes placed 20,000 sentences that a text report then never printed).
#[derive(Debug, Clone, PartialEq)]
pub enum Wording {
    /// `cwd is release 7`: the link leads to a release's top directory (by identity).
    IsRelease,
    /// `cwd /srv/app/releases/7/web`, `command line names ...`: the path, where it lies.
    Path,
    /// A path through `current` that says nothing of the release: the start time against the
    /// switch decided. Boxed so that `Wording` stays two words: it is in every process's
    /// evidence.
    Started(Box<Started>),
    /// An interpreter's module path names the release (`PYTHONPATH names release 1`): the
    /// value itself is never shown.
    Env(&'static str),
    /// A path a process in another mount namespace holds, translated to ours through its
    /// mounts and checked there by identity (`crate::holds::mounts`): `cwd
    /// /srv/app/releases/1/web, through a mount in another mount namespace`.
    Mount,
    /// Forked by this master, which is on the evidence's release.
    Inherited { master: i32 },
}

/// When a process that names a path through `current` started, against the switch.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    /// Seconds between the start and the switch (never negative).
    pub secs: f64,
    /// It started after the switch (so it runs the current release).
    pub after: bool,
    /// The release `current` points at.
    pub current: Name,
    /// What the release birth times say about a process that started before the switch.
    pub loaded: Loaded,
}

/// Which release a process that started before the switch loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    /// Nothing can be said (or it started after the switch).
    Unknown,
    /// Every existing release was created after it started, and no release log says which was
    /// current then: the one it loaded is gone.
    Deleted,
    /// A switch history says `release` was current from `from` until `until` (seconds since
    /// the epoch), when it started (see [`crate::layout::history`]).
    Was {
        release: Name,
        from: f64,
        until: Option<f64>,
        source: crate::layout::history::Source,
    },
    /// It started before the switch, but what it holds now (its cwd or exe) is the current
    /// release: it reloaded into it (see `decide`).
    Reloaded,
}

/// One process placed in one app.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub pid: i32,
    /// Index into the deploy roots.
    pub app: usize,
    pub release: Option<Name>,
    pub state: ReleaseState,
    /// All evidence, the deciding piece first. Shared with the findings that cite it (a
    /// finding about a master and 250 workers held a copy of all their evidence).
    pub evidence: Box<[std::sync::Arc<Evidence>]>,
    /// The configured role whose pattern matches the command line (first match wins).
    pub role: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attribution {
    /// Sorted by pid.
    pub placements: Vec<Placement>,
    /// Processes we could not inspect (a `cwd` or `exe` denied, or on a filesystem that did
    /// not answer) that could be running an app's code: (pid, app index), once per app. A
    /// process could run an app's code when it runs as root, as the owner of the app's
    /// releases or as a uid already running the app's processes, or when its command line
    /// names the app's root; a process of root could run any app's. Never OK while this is
    /// not empty: see `findings::unreadable`.
    pub unreadable: Vec<(i32, usize)>,
    /// Processes we could not inspect that could run no app's code (another user's shell).
    pub unreadable_elsewhere: usize,
    pub kernel_threads: usize,
    /// Processes dropped because they live in another mount namespace (see [`verify`]).
    pub other_mount_ns: usize,
    /// Placements dropped because the pid was reused or exited during the scan.
    pub raced: usize,
    /// Zombie children of placed processes that were still zombies when looked at again (see
    /// [`confirm_zombies`]); only these make a `zombie` finding.
    pub lasting_zombies: Vec<i32>,
    /// Processes on an old or deleted release whose children died and were reaped between the
    /// snapshot and a second look ([`watch_reaping`]): masters whose workers keep dying.
    pub reaping: Vec<i32>,
    /// The device of each root's releases directory (by app index), for `crate::holds`' look
    /// at processes in another mount namespace.
    pub releases_devs: Vec<Option<u64>>,
}

impl Attribution {
    /// How many processes could not be inspected, whatever app they could belong to: each
    /// process once, however many apps it could run.
    pub fn not_inspected(&self) -> usize {
        let mut pids: Vec<i32> = self.unreadable.iter().map(|&(pid, _)| pid).collect();
        pids.sort_unstable();
        pids.dedup();
        pids.len() + self.unreadable_elsewhere
    }

    pub fn get(&self, pid: i32) -> Option<&Placement> {
        self.placements
            .binary_search_by_key(&pid, |p| p.pid)
            .ok()
            .map(|i| &self.placements[i])
    }
}

enum Loc<'a> {
    Release(&'a [u8]),
    ViaCurrent,
}

/// Where a path lies in a deploy root, lexically.
fn locate<'a>(root: &DeployRoot, path: &'a [u8]) -> Option<Loc<'a>> {
    fn under<'p>(path: &'p [u8], prefix: &Path) -> Option<&'p [u8]> {
        let p = prefix.as_os_str().as_bytes();
        let rest = path.strip_prefix(p)?;
        if rest.is_empty() {
            Some(rest)
        } else {
            rest.strip_prefix(b"/")
        }
    }
    // The link first: in a flat layout (root/current -> root/7) the link is inside the
    // releases directory.
    if root.link_spellings.iter().any(|l| under(path, l).is_some()) {
        return Some(Loc::ViaCurrent);
    }
    for dir in &root.releases_spellings {
        if let Some(rest) = under(path, dir) {
            let name = rest.split(|&b| b == b'/').next().unwrap_or_default();
            if name.is_empty() || NOT_RELEASES.iter().any(|n| n.as_bytes() == name) {
                return None;
            }
            return Some(Loc::Release(name));
        }
    }
    None
}

/// Lexically clean an absolute path from a command line: drop `.` and empty components, apply
/// `..`. Never touches the filesystem.
fn clean(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// Places processes: the deploy roots, their release directories by identity, and what is
/// looked up once and shared by every process placed.
struct Placer<'a> {
    roots: &'a [DeployRoot],
    snap: &'a Snapshot,
    identities: HashMap<(u64, u64), (usize, usize)>,
    /// Unlisted release names already looked up on disk, per app: the 2,000 workers of a
    /// deleted release asked the filesystem 2,000 times.
    unlisted: std::cell::RefCell<HashMap<(usize, OsString), bool>>,
    /// Release names handed out so far (see [`Name`]).
    names: std::cell::RefCell<std::collections::HashSet<Name>>,
    /// Per app, what was current when: from the deploy tool's log, then from birth times.
    timelines: Vec<[Option<Timeline>; 3]>,
}

impl Placer<'_> {
    /// The shared copy of a release name.
    fn name(&self, bytes: &[u8]) -> Name {
        let name = OsStr::from_bytes(bytes);
        if let Some(shared) = self.names.borrow().get(name) {
            return shared.clone();
        }
        let shared: Name = name.into();
        self.names.borrow_mut().insert(shared.clone());
        shared
    }

    fn state_of(&self, app: usize, name: &[u8], gone: bool) -> ReleaseState {
        if gone {
            return ReleaseState::Deleted;
        }
        match self.roots[app].current_release() {
            Some(c) if c.as_bytes() == name => ReleaseState::Current,
            Some(_) => ReleaseState::Old,
            None => ReleaseState::Unknown,
        }
    }

    /// Does release `name` of `app` exist on disk? Listed releases do; an unlisted name is
    /// checked with lstat (a release created after the listing exists too).
    fn release_exists(&self, app: usize, name: &[u8]) -> bool {
        let root = &self.roots[app];
        if root.release(OsStr::from_bytes(name)).is_some() {
            return true;
        }
        let key = (app, OsStr::from_bytes(name).to_os_string());
        if let Some(&known) = self.unlisted.borrow().get(&key) {
            return known;
        }
        let exists = root.releases_dir.as_ref().is_some_and(|d| {
            std::fs::symlink_metadata(d.join(OsStr::from_bytes(name))).is_ok_and(|m| m.is_dir())
        });
        self.unlisted.borrow_mut().insert(key, exists);
        exists
    }

    /// Evidence from a `cwd` or `exe` link.
    fn link_evidence(&self, p: &Process, how: How, link: &Link, out: &mut Vec<(usize, Evidence)>) {
        // Identity first (cwd at a release's top directory, however it is spelled).
        if !link.is_deleted() {
            if let Some(&(app, idx)) = link.identity().and_then(|id| self.identities.get(&id)) {
                let name = self.roots[app].releases[idx].name.clone();
                let state = self.state_of(app, name.as_bytes(), false);
                out.push((
                    app,
                    Evidence {
                        pid: p.pid,
                        how,
                        path: Some(link.path()),
                        deleted: false,
                        wording: Wording::IsRelease,
                        release: Some(self.name(name.as_bytes())),
                        state,
                    },
                ));
                return;
            }
        }
        let path = link.path();
        for (app, root) in self.roots.iter().enumerate() {
            let Some(Loc::Release(name)) = locate(root, path.as_bytes()) else {
                continue;
            };
            let exists = self.release_exists(app, name);
            // A deleted cwd at the top of a release means that release directory is gone,
            // even if a new one with the same name was made since.
            let top_gone = link.is_deleted() && how == How::Cwd && {
                let rest_is_name = root.releases_spellings.iter().any(|d| {
                    let mut top = d.as_os_str().as_bytes().to_vec();
                    top.push(b'/');
                    top.extend_from_slice(name);
                    top == path.as_bytes()
                });
                rest_is_name
            };
            let gone = !exists || top_gone;
            let state = self.state_of(app, name, gone);
            out.push((
                app,
                Evidence {
                    pid: p.pid,
                    how,
                    path: Some(path.clone()),
                    deleted: link.is_deleted(),
                    release: Some(self.name(name)),
                    state,
                    wording: Wording::Path,
                },
            ));
            return;
        }
    }

    /// Evidence from the command line.
    fn cmdline_evidence(&self, p: &Process, cwd_placed: bool, out: &mut Vec<(usize, Evidence)>) {
        let cwd = p.cwd.as_ref().ok().filter(|l| !l.is_deleted());
        for arg in p.cmdline.iter() {
            let mut a = arg.as_bytes();
            // --config=/srv/app/current/x
            if a.starts_with(b"-") {
                match a.iter().position(|&b| b == b'=') {
                    Some(i) => a = &a[i + 1..],
                    None => continue,
                }
            }
            let full = if a.starts_with(b"/") {
                clean(a)
            } else if !cwd_placed && a.contains(&b'/') {
                let Some(cwd) = cwd else { continue };
                let mut j = cwd.target.as_bytes().to_vec();
                j.push(b'/');
                j.extend_from_slice(a);
                clean(&j)
            } else {
                continue;
            };
            for (app, root) in self.roots.iter().enumerate() {
                match locate(root, &full) {
                    Some(Loc::ViaCurrent) => {
                        if let Some(ev) = self.via_current(p, app, &full) {
                            out.push((app, ev));
                        }
                        break;
                    }
                    Some(Loc::Release(name)) => {
                        // Only a path that goes *into* a release directory names it.
                        if full.len() <= name.len() + 1 || !self.names_dir(root, &full, name) {
                            break;
                        }
                        let exists = self.release_exists(app, name);
                        let state = self.state_of(app, name, !exists);
                        let fullp = OsStr::from_bytes(&full).to_os_string();
                        out.push((
                            app,
                            Evidence {
                                pid: p.pid,
                                how: How::Script,
                                path: Some(fullp.into()),
                                deleted: !exists,
                                release: Some(self.name(name)),
                                state,
                                wording: Wording::Path,
                            },
                        ));
                        break;
                    }
                    None => {}
                }
            }
        }
    }

    /// `full` is `<releases dir>/<name>/<more>` for one of the spellings.
    fn names_dir(&self, root: &DeployRoot, full: &[u8], name: &[u8]) -> bool {
        root.releases_spellings.iter().any(|d| {
            let d = d.as_os_str().as_bytes();
            full.len() > d.len() + 1 + name.len() + 1
                && full.starts_with(d)
                && full[d.len() + 1 + name.len()] == b'/'
        })
    }

    fn via_current(&self, p: &Process, app: usize, full: &[u8]) -> Option<Evidence> {
        let root = &self.roots[app];
        let current = root.current_release()?;
        let switch = root.switch_time?;
        let clock = &self.snap.clock;
        let start = clock.start_time(p.start_ticks);
        let evidence = |state, release, started: Started| Evidence {
            pid: p.pid,
            how: How::ViaCurrent,
            path: Some(OsStr::from_bytes(full).into()),
            // The path through current exists, whatever became of the release it resolved to.
            deleted: false,
            release,
            state,
            wording: Wording::Started(Box::new(started)),
        };
        let mut started = Started {
            secs: (start - switch).abs(),
            // Start time is known to one clock tick: only "before" when the whole tick is.
            after: start + clock.tick() > switch,
            current: self.name(current.as_bytes()),
            loaded: Loaded::Unknown,
        };
        if started.after {
            let release = Some(started.current.clone());
            return Some(evidence(ReleaseState::Current, release, started));
        }
        // Which release was current then? The deploy tool's log, else the releases' birth
        // times (a rollback makes an older release current again).
        let tick = clock.tick();
        let period = self.timelines[app]
            .iter()
            .flatten()
            .find_map(|t| t.at(start, tick));
        if let Some(period) = period {
            let name = self.name(period.release.as_bytes());
            let gone = !self.release_exists(app, name.as_bytes());
            let state = self.state_of(app, name.as_bytes(), gone);
            started.loaded = Loaded::Was {
                release: name.clone(),
                from: period.from,
                until: period.until,
                source: period.source,
            };
            return Some(evidence(state, Some(name), started));
        }
        // A process that started before every existing release was created loaded one that
        // is gone. Birth times are exact, start times only to the tick: a release born in the
        // same tick as the process may have been born just before it.
        let all_known =
            !root.releases.is_empty() && root.releases.iter().all(|r| r.created.is_some());
        if all_known
            && root
                .releases
                .iter()
                .all(|r| r.created.is_some_and(|c| c > start + tick))
        {
            started.loaded = Loaded::Deleted;
            return Some(evidence(ReleaseState::Deleted, None, started));
        }
        Some(evidence(ReleaseState::Old, None, started))
    }

    /// The apps whose code this process, which we could not inspect, could be running: every
    /// app when it runs as root; an app whose releases it owns, or whose processes already
    /// run as its uid; an app whose root its command line names, whoever runs it. `uids[app]`
    /// holds the uids of the processes placed in each app.
    fn may_belong<'s>(
        &'s self,
        p: &'s Process,
        uids: &'s [std::collections::HashSet<u32>],
    ) -> impl Iterator<Item = usize> + 's {
        self.roots
            .iter()
            .enumerate()
            .filter_map(move |(app, root)| {
                let could_run = p.uid == 0
                    || root.owner_uid == Some(p.uid)
                    || uids.get(app).is_some_and(|u| u.contains(&p.uid));
                let names_root = || {
                    p.cmdline.iter().any(|a| {
                        let a = a.as_bytes();
                        root.releases_spellings
                            .iter()
                            .chain(root.link_spellings.iter())
                            .any(|s| names_path(a, s.as_os_str().as_bytes()))
                    })
                };
                (could_run || names_root()).then_some(app)
            })
    }

    /// Count the processes we could not inspect (see [`Attribution::unreadable`]), once every
    /// other process is placed: which uids run each app is known only then.
    fn count_blind(&self, blind: &[&Process], out: &mut Attribution) {
        let mut uids = vec![std::collections::HashSet::new(); self.roots.len()];
        for pl in &out.placements {
            if let (Some(set), Some(p)) = (uids.get_mut(pl.app), self.snap.get(pl.pid)) {
                set.insert(p.uid);
            }
        }
        for p in blind {
            if self.snap.shielded(p) {
                out.unreadable_elsewhere += 1;
                continue;
            }
            let before = out.unreadable.len();
            out.unreadable
                .extend(self.may_belong(p, &uids).map(|app| (p.pid, app)));
            if out.unreadable.len() == before {
                out.unreadable_elsewhere += 1;
            }
        }
    }
}

/// `path` in `arg` as whole path components: followed by the end, a `/`, or a byte that cannot
/// continue a file name's last component, as a separator (`--root=/srv/app:/x`, `"/srv/app"`).
/// `/srv/proc` is not in `/srv/process_api`.
fn names_path(arg: &[u8], path: &[u8]) -> bool {
    let continues = |b: &u8| *b >= 0x80 || b.is_ascii_alphanumeric() || b"._-+@%~#".contains(b);
    !path.is_empty()
        && arg.windows(path.len()).enumerate().any(|(at, w)| {
            w == path
                && arg
                    .get(at + path.len())
                    .is_none_or(|b| *b == b'/' || !continues(b))
        })
}

/// The switch histories of a root, best first: its deploy tool's log, the switches this run
/// saw (the agent's own record), its releases' birth times. None without a current release and
/// a switch time.
fn timelines(root: &DeployRoot) -> [Option<Timeline>; 3] {
    let (Some(current), Some(switch)) = (root.current_release(), root.switch_time) else {
        return [None, None, None];
    };
    let logged = root
        .log
        .as_ref()
        .map(|l| Timeline::new(l.source, l.switches.clone(), current, switch));
    // One switch seen is only where `current` was at the first reading: it says nothing the
    // link's ctime does not.
    let seen = (root.seen.len() > 1)
        .then(|| Timeline::new(Source::Seen, root.seen.clone(), current, switch));
    let born = Timeline::of_births(&root.releases, current, switch);
    [logged, seen, Some(born)]
}

/// Which piece of evidence decides a process's release (its index in `found`).
///
/// What the process holds now or names itself (cwd, exe, a command-line path into a release
/// directory) decides; among those the worst wins (deleted, then old), and its app is the
/// process's app. The start-time inference through `current` decides only when nothing else
/// names a release. When the cwd or exe says current and the inference says the process
/// started before the switch, the process reloaded into the current release (a gunicorn
/// `--chdir current` master after HUP): the inference is rewritten to say so.
fn decide(found: &mut [(usize, Evidence)]) -> Option<usize> {
    let rank = |i: usize, e: &Evidence| (e.how != How::ViaCurrent, e.state, usize::MAX - i);
    let decider = (0..found.len()).max_by_key(|&i| rank(i, &found[i].1))?;
    let (app, held) = (found[decider].0, &found[decider].1);
    if !matches!(held.how, How::Cwd | How::Exe) || held.state != ReleaseState::Current {
        return Some(decider);
    }
    let current = held.release.clone();
    for (a, e) in found.iter_mut() {
        if *a != app || e.state == ReleaseState::Current {
            continue;
        }
        if let Wording::Started(s) = &mut e.wording {
            s.loaded = Loaded::Reloaded;
            e.state = ReleaseState::Current;
            e.release.clone_from(&current);
        }
    }
    Some(decider)
}

/// The device of a root's releases directory.
fn releases_dev(root: &DeployRoot) -> Option<u64> {
    let dir = root.releases_dir.as_ref()?;
    std::fs::metadata(dir).ok().map(|m| m.dev())
}

impl<'a> Placer<'a> {
    fn new(roots: &'a [DeployRoot], snap: &'a Snapshot) -> Self {
        let mut identities = HashMap::new();
        for (a, root) in roots.iter().enumerate() {
            for (i, r) in root.releases.iter().enumerate() {
                identities.entry((r.dev, r.ino)).or_insert((a, i));
            }
        }
        Placer {
            roots,
            snap,
            identities,
            unlisted: Default::default(),
            names: Default::default(),
            timelines: roots.iter().map(timelines).collect(),
        }
    }

    /// Place one process by its cwd, exe, command line and what else it holds (`held`). In
    /// another mount namespace (`own_ns` false) the text of its cwd, exe and command line is
    /// not ours: only what `held` translated counts.
    fn place_one(
        &self,
        p: &Process,
        held: &[Held],
        own_ns: bool,
        found: &mut Vec<(usize, Evidence)>,
    ) -> Option<Placement> {
        found.clear();
        if let (Ok(cwd), true) = (&p.cwd, own_ns) {
            self.link_evidence(p, How::Cwd, cwd, found);
        }
        let cwd_placed = !found.is_empty();
        if let (Ok(exe), true) = (&p.exe, own_ns) {
            self.link_evidence(p, How::Exe, exe, found);
        }
        if own_ns {
            self.cmdline_evidence(p, cwd_placed, found);
        }
        for h in held {
            let before = found.len();
            self.link_evidence(p, h.how, &h.link, found);
            let Some((_, e)) = found.get_mut(before) else {
                continue;
            };
            match (h.key, h.through_mounts) {
                (Some(key), _) => e.wording = Wording::Env(key),
                (None, true) if e.wording == Wording::Path => e.wording = Wording::Mount,
                _ => {}
            }
        }
        let decider = decide(found)?;
        let app = found[decider].0;
        let mut evidence = Vec::with_capacity(found.len());
        for (i, (a, e)) in found.drain(..).enumerate() {
            if i == decider {
                evidence.insert(0, std::sync::Arc::new(e));
            } else if a == app {
                evidence.push(std::sync::Arc::new(e));
            }
        }
        Some(Placement {
            pid: p.pid,
            app,
            release: evidence[0].release.clone(),
            state: evidence[0].state,
            evidence: evidence.into_boxed_slice(),
            role: None,
        })
    }
}

/// What `crate::holds` read more of one process: its pid, whether it lives in another mount
/// namespace (then only `held` counts, see [`Held::through_mounts`]), and what it holds.
pub type HeldBy = (i32, bool, Vec<Held>);

/// Place again the processes `crate::holds` read more of: each by everything the cheap pass
/// read of it and what it holds. Pure, like [`attribute`]; a process placed by none of it is
/// left out.
pub fn attribute_held(roots: &[DeployRoot], snap: &Snapshot, held: &[HeldBy]) -> Vec<Placement> {
    let placer = Placer::new(roots, snap);
    let mut found = Vec::new();
    held.iter()
        .filter_map(|(pid, elsewhere, held)| {
            placer.place_one(snap.get(*pid)?, held, !elsewhere, &mut found)
        })
        .collect()
}

/// Place every process of the snapshot.
pub fn attribute(roots: &[DeployRoot], snap: &Snapshot) -> Attribution {
    let placer = Placer::new(roots, snap);
    let mut out = Attribution {
        // Room for every process at once: growing by doubling held the old and the new array
        // together (a fifth of a scan's peak memory where most processes are placed), and a
        // large allocation's untouched tail costs no resident memory.
        placements: Vec::with_capacity(snap.processes.len()),
        releases_devs: roots.iter().map(releases_dev).collect(),
        ..Attribution::default()
    };
    let mut found: Vec<(usize, Evidence)> = Vec::new();
    let mut blind: Vec<&Process> = Vec::new();
    for p in &snap.processes {
        if p.pid == snap.own_pid {
            continue;
        }
        if p.kernel_thread {
            out.kernel_threads += 1;
            continue;
        }
        if p.is_zombie() {
            continue;
        }
        if p.blind() {
            blind.push(p);
            continue;
        }
        if let Some(pl) = placer.place_one(p, &[], true, &mut found) {
            out.placements.push(pl);
        }
    }
    placer.count_blind(&blind, &mut out);
    out
}

/// A master's whole tree is in its release. A process that nothing of its own places (its
/// cwd is `/` or elsewhere, its command line names no release: a daemonised worker, a child
/// the master spawned) runs for the nearest placed ancestor, its master; so does one placed
/// only by its start time through `current/` whose command line is its parent's (a forked
/// copy: its start is not when it loaded the code, its master's is). Never below a supervisor
/// (`is_supervisor`: its children are programs with their own places) and never above PID 1.
pub fn inherit_from_masters(
    out: &mut Attribution,
    snap: &Snapshot,
    is_supervisor: &dyn Fn(&Process) -> bool,
) {
    let mut inherited: Vec<Placement> = Vec::new();
    for p in &snap.processes {
        if p.pid == snap.own_pid || p.kernel_thread || p.is_zombie() || p.blind() {
            continue;
        }
        let own = out.get(p.pid);
        if own.is_some_and(|pl| !forked_copy(pl, p, snap)) {
            continue;
        }
        let Some(master) = placed_ancestor(out, snap, p, is_supervisor) else {
            continue;
        };
        if own.is_some_and(|pl| pl.app == master.app && pl.state == master.state) {
            continue;
        }
        let mut evidence = vec![std::sync::Arc::new(Evidence {
            pid: p.pid,
            how: How::Master,
            path: None,
            deleted: false,
            release: master.release.clone(),
            state: master.state,
            wording: Wording::Inherited { master: master.pid },
        })];
        evidence.extend(own.iter().flat_map(|pl| pl.evidence.iter().cloned()));
        inherited.push(Placement {
            pid: p.pid,
            app: master.app,
            release: master.release.clone(),
            state: master.state,
            evidence: evidence.into_boxed_slice(),
            role: None,
        });
    }
    if inherited.is_empty() {
        return;
    }
    let pids: std::collections::HashSet<i32> = inherited.iter().map(|pl| pl.pid).collect();
    out.placements.retain(|pl| !pids.contains(&pl.pid));
    out.placements.extend(inherited);
    out.placements.sort_by_key(|pl| pl.pid);
}

/// Placed only by its start time through `current/`, with its parent's command line.
fn forked_copy(pl: &Placement, p: &Process, snap: &Snapshot) -> bool {
    pl.evidence
        .first()
        .is_some_and(|e| e.how == How::ViaCurrent)
        && pl.evidence.iter().all(|e| e.how == How::ViaCurrent)
        && snap
            .get(p.ppid)
            .is_some_and(|parent| parent.cmdline == p.cmdline)
}

/// The nearest ancestor of `p` placed by evidence of its own, unless a supervisor or PID 1
/// comes first.
fn placed_ancestor<'a>(
    out: &'a Attribution,
    snap: &Snapshot,
    p: &Process,
    is_supervisor: &dyn Fn(&Process) -> bool,
) -> Option<&'a Placement> {
    let mut pid = p.ppid;
    for _ in 0..64 {
        let a = snap.get(pid).filter(|a| a.pid > 1)?;
        if is_supervisor(a) {
            return None;
        }
        if let Some(pl) = out
            .get(pid)
            .filter(|pl| pl.evidence.first().is_some_and(|e| e.how != How::Master))
        {
            return Some(pl);
        }
        pid = a.ppid;
    }
    None
}

/// The command line as config patterns see it: arguments joined by single spaces.
pub fn joined_cmdline(p: &crate::snapshot::Process) -> String {
    let mut s = String::new();
    for (i, a) in p.cmdline.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Apply each app's configuration: drop processes its `ignore` patterns match, and name the
/// role whose `match` pattern matches (the first one, in file order).
pub fn apply_settings(
    attr: &mut Attribution,
    snap: &Snapshot,
    settings: &crate::settings::Settings,
) {
    attr.placements.retain_mut(|pl| {
        let Some(app) = settings.apps.get(pl.app) else {
            return true;
        };
        if app.ignore.is_empty() && app.roles.is_empty() {
            return true;
        }
        let Some(p) = snap.get(pl.pid) else {
            return false;
        };
        let line = joined_cmdline(p);
        if app.ignore.iter().any(|re| re.is_match(&line)) {
            return false;
        }
        pl.role = app
            .roles
            .iter()
            .find(|r| r.pattern.is_match(&line))
            .map(|r| r.name.clone());
        true
    });
}

/// The placed processes worth a second look: those that can decide a finding. A process on
/// the current release decides one only when it has a role (duplicate, missing), hangs
/// directly under PID 1 (orphan) or has zombie children. Only these pay for the second look at
/// their start time and mount namespace, and for the owner reads: a healthy worker on the
/// current release costs the floor.
pub fn second_look_pids(attr: &Attribution, snap: &Snapshot) -> std::collections::HashSet<i32> {
    let zombie_parents: std::collections::HashSet<i32> = snap
        .processes
        .iter()
        .filter(|p| p.is_zombie())
        .map(|p| p.ppid)
        .collect();
    attr.placements
        .iter()
        .filter(|pl| {
            pl.state != ReleaseState::Current
                || pl.role.is_some()
                || zombie_parents.contains(&pl.pid)
                || snap.get(pl.pid).is_some_and(|p| p.ppid == 1)
        })
        .map(|pl| pl.pid)
        .collect()
}

/// Drop placements that cannot be trusted: the pid was reused or the process exited since it
/// was read (start time changed), or it lives in another mount namespace where paths mean
/// other things. Only the placements in `deciding` (see [`second_look_pids`]) pay for these
/// reads.
pub fn verify(
    attr: &mut Attribution,
    snap: &Snapshot,
    deciding: &std::collections::HashSet<i32>,
    source: &mut dyn crate::snapshot::ProcSource,
) {
    use crate::snapshot::{ProcessSeen, SeenAgain};
    let seen: Vec<ProcessSeen> = attr
        .placements
        .iter()
        .filter(|pl| deciding.contains(&pl.pid))
        .filter_map(|pl| {
            let p = snap.get(pl.pid)?;
            Some(ProcessSeen {
                pid: pl.pid,
                start_ticks: p.start_ticks,
                // Evidence by identity (the cwd or exe is a release directory, by device and
                // inode) holds in any mount namespace: only paths read as text need ours.
                paths: pl.evidence.iter().any(|e| e.wording != Wording::IsRelease),
                dir_ino: p.dir_ino,
            })
        })
        .collect();
    let mut answers = source.look_again_all(&seen).into_iter();
    let mut raced = 0;
    let mut foreign = 0;
    let mut blind = Vec::new();
    attr.placements.retain(|pl| {
        if snap.get(pl.pid).is_none() {
            return false;
        }
        if !deciding.contains(&pl.pid) {
            return true;
        }
        // The answers come in the order of `seen`, made in this order from the same test. A
        // process that is gone is an answer; a look that could not be made (denied, or a
        // /proc file that does not parse) leaves it not inspected, never taken for gone.
        match answers.next() {
            Some(Ok(SeenAgain::Same)) => true,
            Some(Ok(SeenAgain::Gone)) => {
                raced += 1;
                false
            }
            Some(Ok(SeenAgain::Elsewhere | SeenAgain::Foreign))
                if snap.get(pl.pid).is_some_and(|p| backed(pl, p)) =>
            {
                true
            }
            Some(Ok(SeenAgain::Foreign | SeenAgain::Elsewhere)) => {
                foreign += 1;
                false
            }
            Some(Err(_)) | None => {
                blind.push((pl.pid, pl.app));
                false
            }
        }
    });
    attr.raced += raced;
    attr.other_mount_ns += foreign;
    attr.unreadable.extend(blind);
}

/// Whether the placement of a process in another mount namespace under our root rests on
/// identity: the deciding evidence is a release by (device, inode); or the `cwd` or `exe` it
/// names is, in our namespace, the same object (device, inode) as the one it holds; or
/// `crate::holds` translated it through the process's mounts and checked it there (a deleted
/// cwd: the mount's root lies in a release on the file's device). A path on a mount of the
/// process's own (`unshare -m` and a tmpfs over the app, or a bind of the user's own
/// directory, deleted since) is not ours.
fn backed(pl: &Placement, p: &Process) -> bool {
    let Some(decider) = pl.evidence.first() else {
        return false;
    };
    // The path is ours (for a process in another mount namespace `crate::holds` translated
    // it through the mounts); the identity is what the process holds.
    let on_releases_device = |link: &Result<Link, crate::snapshot::LinkError>| {
        let Ok(link) = link else { return false };
        let Some((dev, ino)) = link.identity() else {
            return false;
        };
        // A deleted object cannot be looked at here: only its mounts back it (`crate::holds`,
        // which replaced this placement when they did).
        if link.is_deleted() {
            return false;
        }
        let Some(ours) = decider.path.as_deref() else {
            return false;
        };
        std::fs::metadata(Path::new(ours)).is_ok_and(|m| (m.dev(), m.ino()) == (dev, ino))
    };
    match (&decider.wording, decider.how) {
        // Translated through the process's own mounts and checked there (`crate::holds`).
        (Wording::IsRelease | Wording::Mount, _) => true,
        (Wording::Path, How::Cwd) => on_releases_device(&p.cwd),
        (Wording::Path, How::Exe) => on_releases_device(&p.exe),
        _ => false,
    }
}

/// How long [`watch_reaping`] watches a master's counters: a master that forks a worker at
/// least this often, and each dies, is seen every time.
pub const REAP_WINDOW: std::time::Duration = std::time::Duration::from_millis(300);

/// Name the masters whose workers keep dying even when no worker is alive at the scan: a
/// placed process on an old or deleted release whose reaped children's counters (`cminflt`
/// and `cutime`+`cstime` of `/proc/PID/stat`) grow within [`REAP_WINDOW`] after the snapshot
/// read them. Only a process that had reaped children by then (a counter above 0) is watched, so a scan without one does not
/// wait. A live child at the first look does not exempt it: a worker caught in its last
/// milliseconds is gone at the second look, and the master would be named by luck. Measured in
/// tests/appservers.rs: `cminflt` grows with every reaped child (each child faults in pages of
/// its own), `cutime`/`cstime` only when children lived a clock tick.
pub fn watch_reaping(
    attr: &mut Attribution,
    snap: &Snapshot,
    source: &mut dyn crate::snapshot::ProcSource,
) {
    // The first look is the snapshot's own read of `stat`: a fleet of stale workers that
    // never reaped a child costs no second read (docs/BENCHMARKS.md, issue 20).
    let first: Vec<(i32, u64, (u64, u64))> = attr
        .placements
        .iter()
        .filter(|pl| matches!(pl.state, ReleaseState::Old | ReleaseState::Deleted))
        .filter_map(|pl| {
            let p = snap.get(pl.pid)?;
            (p.reaped != (0, 0)).then_some((pl.pid, p.start_ticks, p.reaped))
        })
        .collect();
    if first.is_empty() {
        return;
    }
    std::thread::sleep(REAP_WINDOW);
    attr.reaping = first
        .into_iter()
        .filter(|&(pid, ticks, (faults, cpu))| {
            source.stat(pid).is_ok_and(|s| {
                s.start_ticks == ticks && (s.reaped_faults > faults || s.reaped_ticks > cpu)
            })
        })
        .map(|(pid, _, _)| pid)
        .collect();
}

/// How long a zombie must stay one before it counts: a parent that reaps its children with
/// `wait` leaves each a zombie for an instant, and a scan that lands in that instant must not
/// report a parent that "does not reap". A zombie's exit time is not in /proc, so we look again.
pub const ZOMBIE_CONFIRM: std::time::Duration = std::time::Duration::from_millis(250);

/// Keep the zombie children of placed processes that are still zombies (same pid and start
/// time) after [`ZOMBIE_CONFIRM`]. Only a scan that saw such zombies pays the wait.
pub fn confirm_zombies(
    attr: &mut Attribution,
    snap: &Snapshot,
    source: &mut dyn crate::snapshot::ProcSource,
) {
    let candidates: Vec<(i32, u64)> = snap
        .processes
        .iter()
        .filter(|z| z.is_zombie() && attr.get(z.ppid).is_some())
        .map(|z| (z.pid, z.start_ticks))
        .collect();
    if candidates.is_empty() {
        return;
    }
    std::thread::sleep(ZOMBIE_CONFIRM);
    attr.lasting_zombies = candidates
        .into_iter()
        // `stat` is readable by anyone who may list the pid: a zombie that cannot be read again
        // was reaped (or its pid reused), so it is not lasting. A zombie is a warning about its
        // parent, which was inspected; nothing here hides a process that could run an app.
        .filter(|&(pid, ticks)| {
            source
                .stat(pid)
                .is_ok_and(|s| s.state == b'Z' && s.start_ticks == ticks)
        })
        .map(|(pid, _)| pid)
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{current, link, process, root, snapshot};

    const SWITCH: f64 = 1_000_000.0;

    /// `/srv/app`, current -> 67 switched at [`SWITCH`]; 66 and 67 created long before.
    fn app() -> DeployRoot {
        DeployRoot {
            switch_time: Some(SWITCH),
            ..root(
                "app",
                b"/srv/app",
                current(b"67"),
                &[(b"66", 66), (b"67", 67)],
            )
        }
    }

    /// Watching for dying workers starts from the snapshot's own counters: of a thousand
    /// stale workers that never reaped a child, none is read again (the benchmark's fleet
    /// paid a second `stat` for each), and the master whose counters grow is named.
    #[test]
    fn only_processes_that_reaped_children_are_read_again() {
        let old = |pid| process(pid, 1, link(b"/srv/app/releases/66", 66, 2), 5.0, &["w"]);
        let mut procs: Vec<Process> = (100..1100).map(old).collect();
        procs.push(Process {
            reaped: (40, 3),
            ..old(50)
        });
        procs.push(Process {
            reaped: (7, 0),
            ..old(60)
        });
        let snap = snapshot(procs, SWITCH + 60.0);
        let mut attr = attribute(&[app()], &snap);
        let mut source = crate::testkit::Told {
            reaping: vec![50],
            ..crate::testkit::Told::new(&snap)
        };
        watch_reaping(&mut attr, &snap, &mut source);
        assert_eq!(
            source.stats,
            [50, 60],
            "read again: only the two that reaped"
        );
        assert_eq!(attr.reaping, [50]);
    }

    /// A gunicorn started an hour before the switch with `--chdir /srv/app/current`, its cwd
    /// now `cwd`.
    fn chdir_current(cwd: Result<Link, crate::snapshot::LinkError>) -> Attribution {
        let p = process(
            10,
            1,
            cwd,
            SWITCH - 3_600.0,
            &["gunicorn", "--chdir", "/srv/app/current", "app:app"],
        );
        attribute(&[app()], &snapshot(vec![p], SWITCH + 60.0))
    }

    #[test]
    fn what_a_process_holds_now_beats_its_start_time() {
        let attr = chdir_current(link(b"/srv/app/releases/67", 67, 2));
        let pl = &attr.placements[0];
        assert_eq!(pl.state, ReleaseState::Current, "{pl:#?}");
        assert_eq!(pl.release.as_deref(), Some(OsStr::new("67")));
        assert_eq!(pl.evidence[0].how, How::Cwd);
        let inferred = &pl.evidence[1];
        assert_eq!(inferred.how, How::ViaCurrent);
        assert_eq!(inferred.state, ReleaseState::Current);
        let Wording::Started(s) = &inferred.wording else {
            panic!("{inferred:#?}")
        };
        assert!(!s.after);
        assert_eq!(s.loaded, Loaded::Reloaded);
    }

    #[test]
    fn a_cwd_still_on_the_old_release_is_old() {
        let attr = chdir_current(link(b"/srv/app/releases/66", 66, 2));
        let pl = &attr.placements[0];
        assert_eq!(pl.state, ReleaseState::Old);
        assert_eq!(pl.release.as_deref(), Some(OsStr::new("66")));
        assert_eq!(pl.evidence[0].how, How::Cwd);
    }

    #[test]
    fn a_cwd_outside_every_release_leaves_the_start_time_to_decide() {
        let attr = chdir_current(link(b"/", 2, 20));
        let pl = &attr.placements[0];
        assert_eq!(pl.state, ReleaseState::Old);
        assert_eq!(pl.evidence[0].how, How::ViaCurrent);
        assert_eq!(pl.evidence.len(), 1);
    }

    #[test]
    fn a_rollback_in_the_release_log_puts_a_worker_back_on_current() {
        use crate::layout::history::{Log, Source, Switch};
        let sw = |r: &str, at: f64| Switch {
            release: r.into(),
            at: Some(at),
        };
        // 66 at 100, 67 at 200, 68 at 300 (deleted since), then back to 67 at SWITCH.
        let root = DeployRoot {
            log: Some(Log {
                source: Source::ReleasesLog,
                switches: vec![sw("66", 100.0), sw("67", 200.0), sw("68", 300.0)],
            }),
            ..app()
        };
        let worker = |pid, started| {
            process(
                pid,
                1,
                link(b"/", 2, 20),
                started,
                &["php", "/srv/app/current/artisan"],
            )
        };
        let snap = snapshot(vec![worker(10, 250.0), worker(11, 350.0)], SWITCH + 60.0);
        let attr = attribute(&[root], &snap);
        let (on67, on68) = (&attr.placements[0], &attr.placements[1]);
        assert_eq!(on67.state, ReleaseState::Current, "{on67:#?}");
        assert_eq!(on67.release.as_deref(), Some(OsStr::new("67")));
        assert_eq!(on68.state, ReleaseState::Deleted, "{on68:#?}");
        assert_eq!(on68.release.as_deref(), Some(OsStr::new("68")));
        let Wording::Started(s) = &on67.evidence[0].wording else {
            panic!("{on67:#?}")
        };
        assert!(matches!(
            &s.loaded,
            Loaded::Was { source: Source::ReleasesLog, from, until: Some(until), .. }
                if *from == 200.0 && *until == 300.0
        ));
    }

    #[test]
    fn a_cwd_on_an_old_release_beats_a_start_after_the_switch() {
        let p = process(
            10,
            1,
            link(b"/srv/app/releases/66", 66, 2),
            SWITCH + 10.0,
            &["php", "/srv/app/current/artisan"],
        );
        let attr = attribute(&[app()], &snapshot(vec![p], SWITCH + 60.0));
        let pl = &attr.placements[0];
        assert_eq!(pl.state, ReleaseState::Old);
        assert_eq!(pl.evidence[0].how, How::Cwd);
        assert_eq!(pl.evidence[1].state, ReleaseState::Current);
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean(b"/srv//app/./current/../x"), b"/srv/app/x");
        assert_eq!(clean(b"/"), b"/");
        assert_eq!(clean(b"/.."), b"/");
    }

    /// Regression: a root's spelling matched inside a longer name (`/proc` in
    /// `/process_api`), so an unreadable process that names another directory was taken
    /// for one of the app's (UNKNOWN instead of OK). Paths match whole components.
    #[test]
    fn an_unreadable_process_belongs_by_whole_path_components() {
        use crate::snapshot::LinkError;
        use crate::testkit::{current, process, root, snapshot};
        let roots = [root("app", b"/srv/app", current(b"1"), &[(b"1", 1)])];
        let denied = |pid, arg: &str| {
            let mut p = process(pid, 1, Err(LinkError::Denied), 1.0, &["php", arg]);
            p.exe = Err(LinkError::Denied);
            p
        };
        let s = snapshot(
            vec![
                denied(10, "/srv/app/current/artisan"),
                denied(11, "/srv/app/currently/artisan"),
                denied(12, "/srv/app/releases_old/7/worker.php"),
                denied(13, "--chdir=/srv/app/releases"),
                denied(14, "PATH=/srv/app/current:/usr/bin"),
                denied(15, "/srv/app/current"),
                denied(16, "/srv/app/current.bak/x"),
                denied(17, "/srv/app/currenté"),
            ],
            10.0,
        );
        let attr = attribute(&roots, &s);
        let pids: Vec<i32> = attr.unreadable.iter().map(|(pid, _)| *pid).collect();
        assert_eq!(pids, [10, 13, 14, 15]);
        assert_eq!(attr.unreadable_elsewhere, 4);
    }
}
