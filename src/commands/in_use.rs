//! `relwatch in-use PATH...`: is any process still using these release directories? What a
//! cleanup step calls before `rm -rf`. This file finds the holders; [`crate::report::in_use`]
//! prints them.
//!
//! It looks deeper than `check`: besides cwd, exe and command-line paths it reads every open
//! file descriptor and every memory-mapped file, and an interpreter's module paths
//! (`PYTHONPATH`, ...: shown as the path asked about, never as the value). Those reads are paid
//! only by the processes that could hold one: user-space processes (kernel threads and zombies
//! are skipped). A process in another mount namespace has its cwd and exe translated to our
//! paths through its mounts and believed by identity ([`crate::holds::mounts`]: a container on
//! a bind mount of `current`); a container's other paths are not ours, so one that holds
//! nothing so translated is skipped and counted.
//!
//! It reads /proc with the scan's first stage ([`crate::scan::read`]) but places no process in
//! an app: the paths asked about need not belong to any deploy root, and a process holds a path
//! whichever release it was placed on, so placement and the rules have nothing to add.
//!
//! It never says "not in use" over what it could not see: a process whose cwd, exe, open files,
//! memory maps or mount namespace it may not read (another user's, without root), or a /proc
//! that hides other users' processes, could hold the paths, so the answer is then "cannot tell"
//! (3), with why and how to see them. A process that exited meanwhile is gone, not unseen.
//!
//! It only answers; it deletes nothing. Exit codes: 0 nobody uses them, 1 some process does
//! (whatever it could not see), 3 cannot tell, or a bad argument.

use crate::cli::{InUseArgs, InUseFormat as Format};
use crate::escape::escape;
use crate::exit::ExitCode;
use crate::holds::interp;
use crate::holds::mounts::{self, MountAt};
use crate::owner::Owners;
use crate::report::in_use::{Blind, Holder, InUse, PathUse, Use};
use crate::settings::UsageError;
use crate::snapshot::{ArgsWorthKeeping, Link, ProcSource, Process, ReadError, Snapshot};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// A path asked about: as given, canonical, and its identity.
struct Target {
    given: PathBuf,
    canonical: PathBuf,
    dev: u64,
    ino: u64,
}

/// One use of one target by one process.
struct Hit {
    target: usize,
    pid: i32,
    how: Use,
    path: OsString,
}

/// `path` is `prefix` or lies below it. The kernel's ` (deleted)` suffix on the last component
/// does not matter for this test.
fn under(path: &[u8], prefix: &[u8]) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/") || rest == Link::DELETED)
}

fn link_hit(link: &Link, t: &Target) -> bool {
    link.identity() == Some((t.dev, t.ino))
        || under(link.target.as_bytes(), t.canonical.as_os_str().as_bytes())
}

pub fn run(args: &InUseArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let targets = targets(&args.paths)?;
    let mut source = super::proc_reader(None);
    let keep = ArgsWorthKeeping::naming(targets.iter().flat_map(|t| [&t.given, &t.canonical]));
    let snap = crate::scan::read(&mut source, keep)?;
    let asked: Vec<OsString> = std::env::args_os().skip(1).collect();
    let found = find_uses(&snap, &targets, &asked, &mut source);
    let pids: Vec<i32> = {
        let mut p: Vec<i32> = found.hits.iter().map(|h| h.pid).collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let owners = crate::owner::collect_pids(&snap, &pids, &mut source);
    let answer = answer(&targets, &found, &snap, &owners);
    match args.format {
        Format::Json => crate::report::in_use::write_json(&answer, out)?,
        Format::Text => crate::report::in_use::write_text(&answer, out)?,
    }
    Ok(answer.exit)
}

/// Each path as given, canonical, with its identity; a path that does not exist is a usage
/// error.
fn targets(paths: &[PathBuf]) -> Result<Vec<Target>, UsageError> {
    let mut targets = Vec::new();
    for given in paths {
        let canonical = std::fs::canonicalize(given).map_err(|e| {
            UsageError(format!(
                "{}: {e} (give the release directories a cleanup is about to delete)",
                escape(given)
            ))
        })?;
        let meta = std::fs::metadata(&canonical)
            .map_err(|e| UsageError(format!("{}: {e}", escape(given))))?;
        targets.push(Target {
            given: given.clone(),
            canonical,
            dev: meta.dev(),
            ino: meta.ino(),
        });
    }
    Ok(targets)
}

/// The hits grouped for the renderer: per target, each process in the order found, with its
/// uses in the order found; and what could not be seen.
fn answer<'a>(
    targets: &'a [Target],
    found: &'a Found,
    snap: &'a Snapshot,
    owners: &Owners,
) -> InUse<'a> {
    let hits = &found.hits;
    let paths = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut holders: Vec<Holder> = Vec::new();
            for h in hits.iter().filter(|h| h.target == i) {
                let used = (h.how, h.path.as_os_str());
                match holders.iter_mut().find(|p| p.pid == h.pid) {
                    Some(p) => p.uses.push(used),
                    None => holders.push(Holder {
                        pid: h.pid,
                        name: snap.get(h.pid).map(|p| p.name()),
                        owner: owners
                            .get(h.pid)
                            .map(|o| o.label())
                            .unwrap_or_else(|| "owner unknown".into()),
                        uses: vec![used],
                    }),
                }
            }
            PathUse {
                given: &t.given,
                holders,
            }
        })
        .collect();
    let mut uids: Vec<u32> = found
        .blind
        .iter()
        .filter_map(|&pid| snap.get(pid).map(|p| p.uid))
        .collect();
    uids.sort_unstable();
    uids.dedup();
    let blind = Blind {
        processes: found.blind.len(),
        uids,
        hidden_pids: snap.hidden_pids,
        shielded: found.shielded,
    };
    // In use is an answer whatever else could not be seen; nothing seen in use is one only
    // when everything could be.
    let exit = if !hits.is_empty() {
        ExitCode::Warning
    } else if blind.is_blind() {
        ExitCode::Unknown
    } else {
        ExitCode::Ok
    };
    InUse {
        paths,
        other_mount_ns: found.skipped,
        blind,
        exit,
    }
}

/// What [`find_uses`] found.
struct Found {
    /// Every use of every target, in pid order.
    hits: Vec<Hit>,
    /// Processes skipped for living under another root directory (their paths are not ours).
    skipped: usize,
    /// Processes that could hold a target but could not be inspected, in pid order.
    blind: Vec<i32>,
    /// Our pid namespace's init could not be inspected although we hold `CAP_SYS_PTRACE`
    /// (see [`Snapshot::shielded`]): said, but no reason to answer "cannot tell".
    shielded: bool,
}

/// How the look at one process ended.
enum Look {
    /// Everything it holds was read.
    Whole,
    /// Something it holds could not be read (denied, or a read that failed otherwise).
    Partial,
    /// It lives under another root directory: its paths are not ours.
    Foreign,
    /// It exited, or its pid now belongs to another process: neither a use nor blindness.
    Gone,
}

/// Every use of every target, in pid order, the processes skipped for living under another
/// root directory, and those that could not be inspected.
/// `asked` is our own command line after the program name (see [`wrappers`]).
fn find_uses(
    snap: &Snapshot,
    targets: &[Target],
    asked: &[OsString],
    source: &mut dyn ProcSource,
) -> Found {
    let mut found = Found {
        hits: Vec::new(),
        skipped: 0,
        blind: Vec::new(),
        shielded: false,
    };
    let wrappers = wrappers(snap, asked);
    // issue 17: without our own mounts no other namespace's path is translated (its
    // processes are skipped and counted, as before).
    let ours = mounts::parse(&source.own_mounts().unwrap_or_default());
    for p in &snap.processes {
        if p.pid == snap.own_pid || p.kernel_thread || p.is_zombie() {
            continue;
        }
        let before = found.hits.len();
        let argv = !wrappers.contains(&p.pid);
        match look(p, targets, &ours, argv, source, &mut found.hits) {
            Look::Whole => {}
            Look::Partial if snap.shielded(p) => found.shielded = true,
            Look::Partial => found.blind.push(p.pid),
            Look::Foreign => found.skipped += 1,
            Look::Gone => found.hits.truncate(before),
        }
    }
    found
}

/// The processes that launched this very `relwatch in-use` with its arguments and wait for it
/// (`sudo -n relwatch in-use PATH`, `timeout 60 relwatch in-use PATH`): our ancestors whose
/// command line ends with ours (`asked`). That it names the paths is the question, not a use;
/// their cwd, exe and open files still count.
fn wrappers(snap: &Snapshot, asked: &[OsString]) -> Vec<i32> {
    let mut out = Vec::new();
    let mut pid = snap.get(snap.own_pid).map_or(0, |me| me.ppid);
    // Bounded: a racy snapshot must not make a loop of parents.
    for _ in 0..64 {
        let Some(p) = snap.get(pid).filter(|_| pid > 1) else {
            break;
        };
        let argv: Vec<&std::ffi::OsStr> = p.cmdline.iter().collect();
        if !asked.is_empty()
            && argv.ends_with(&asked.iter().map(OsString::as_os_str).collect::<Vec<_>>())
        {
            out.push(pid);
        }
        pid = p.ppid;
    }
    out
}

/// Read what `p` holds and add its uses of `targets` to `hits`: its cwd, exe and (when `argv`)
/// command-line paths (from the snapshot), then its open files and memory maps. A process
/// whose mount namespace cannot be read may be in ours: it is looked at, and counts as not
/// inspected.
fn look(
    p: &Process,
    targets: &[Target],
    ours: &[MountAt],
    argv: bool,
    source: &mut dyn ProcSource,
    hits: &mut Vec<Hit>,
) -> Look {
    let mut whole = !p.blind();
    let before = hits.len();
    // Another mount namespace: its cwd and exe, translated to our paths through its mounts
    // and backed by identity (a container's `-v /srv/app/current:/app`).
    match source.mounts_of(p.pid) {
        Ok(Some(theirs)) => mounted_hits(p, targets, &theirs, ours, source, hits),
        Ok(None) => {}
        Err(ReadError::Gone) => return Look::Gone,
        Err(_) => whole = false,
    }
    match source.foreign_mount_ns(p.pid) {
        Ok(true) if hits.len() > before => return Look::Whole,
        Ok(true) => return Look::Foreign,
        Ok(false) => {}
        Err(ReadError::Gone) => return Look::Gone,
        Err(_) => whole = false,
    }
    held_hits(p, targets, argv, hits);
    if interp::is_interpreter(p) {
        module_path_hits(p, targets, source, hits);
    }
    let fds = source.open_files(p.pid);
    // Only the mapped paths asked about are kept: a maps file can be hundreds of megabytes.
    let wanted = |m: &[u8]| {
        targets
            .iter()
            .any(|t| under(m, t.canonical.as_os_str().as_bytes()))
    };
    let maps = source.mapped_files(p.pid, &wanted);
    for read in [fds.as_ref().err(), maps.as_ref().err()]
        .into_iter()
        .flatten()
    {
        match read {
            ReadError::Gone => return Look::Gone,
            _ => whole = false,
        }
    }
    file_hits(
        p.pid,
        targets,
        &fds.unwrap_or_default(),
        &maps.unwrap_or_default(),
        hits,
        before,
    );
    // A use seen only once the process was gone (pid reused) is dropped, and so is its
    // blindness; a start time that cannot be read again proves nothing either way.
    if hits.len() > before || !whole {
        match source.stat(p.pid) {
            Ok(s) if s.start_ticks != p.start_ticks => return Look::Gone,
            Err(ReadError::Gone) => return Look::Gone,
            _ => {}
        }
    }
    if whole {
        Look::Whole
    } else {
        Look::Partial
    }
}

/// The uses of a process in another mount namespace (which sees the mounts `theirs`): its
/// cwd, exe and the files it maps or holds open, where they translate to our paths by
/// identity (see [`mounts::translate`]).
fn mounted_hits(
    p: &Process,
    targets: &[Target],
    theirs: &[u8],
    ours: &[MountAt],
    source: &mut dyn ProcSource,
    hits: &mut Vec<Hit>,
) {
    let theirs = mounts::parse(theirs);
    // issue 17: files we could not read add no use; the process's other reads decide whether
    // it was inspected.
    let files = source.held_files(p.pid, &|_| true).unwrap_or_default();
    let file = crate::holds::file_link;
    let held: Vec<(Use, Link)> = [(Use::Cwd, &p.cwd), (Use::Exe, &p.exe)]
        .into_iter()
        .filter_map(|(how, link)| Some((how, link.as_ref().ok()?.clone())))
        .chain(files.mapped.iter().map(|f| (Use::MappedFile, file(f))))
        .chain(files.open.iter().map(|f| (Use::OpenFile, file(f))))
        .collect();
    for (i, t) in targets.iter().enumerate() {
        let prefix = t.canonical.as_os_str().as_bytes();
        let wanted = |path: &[u8]| under(path, prefix);
        for (how, link) in &held {
            let how = *how;
            if let Some(path) = mounts::translate(&wanted, link, &theirs, ours) {
                hits.push(Hit {
                    target: i,
                    pid: p.pid,
                    how,
                    path: std::ffi::OsStr::from_bytes(&path).to_os_string(),
                });
            }
        }
    }
}

/// The uses by an interpreter's module path (`PYTHONPATH`, ...): shown as the path asked
/// about, never as the value (environments hold secrets).
fn module_path_hits(
    p: &Process,
    targets: &[Target],
    source: &mut dyn ProcSource,
    hits: &mut Vec<Hit>,
) {
    source.cgroup_and_env(&[p.pid], &|_| interp::KEYS, &mut |pid, read| {
        // issue 17: an environment we could not read names nothing; the process's other
        // reads decide whether it was inspected.
        for (_, value) in read.env.unwrap_or_default() {
            for (i, t) in targets.iter().enumerate() {
                let prefix = t.canonical.as_os_str().as_bytes();
                if interp::dirs(&value).any(|d| under(d, prefix))
                    && !hits
                        .iter()
                        .any(|h| h.pid == pid && h.target == i && h.how == Use::InterpreterPath)
                {
                    hits.push(Hit {
                        target: i,
                        pid,
                        how: Use::InterpreterPath,
                        path: t.canonical.clone().into_os_string(),
                    });
                }
            }
        }
    });
}

/// The uses the snapshot already shows: cwd, exe, and (when `argv`) paths in the command line.
fn held_hits(p: &Process, targets: &[Target], argv: bool, hits: &mut Vec<Hit>) {
    for (i, t) in targets.iter().enumerate() {
        let prefix = t.canonical.as_os_str().as_bytes();
        let mut hit = |how, path: OsString| {
            hits.push(Hit {
                target: i,
                pid: p.pid,
                how,
                path,
            })
        };
        if let Ok(cwd) = &p.cwd {
            if link_hit(cwd, t) {
                hit(Use::Cwd, cwd.path().to_os_string());
            }
        }
        if let Ok(exe) = &p.exe {
            if link_hit(exe, t) {
                hit(Use::Exe, exe.path().to_os_string());
            }
        }
        for arg in p.cmdline.iter().filter(|_| argv) {
            if under(arg.as_bytes(), prefix) {
                hit(Use::Script, arg.to_os_string());
            }
        }
    }
}

/// The uses among open files and mapped files; a file mapped several times is one use.
/// `before` is where this process's hits begin.
fn file_hits(
    pid: i32,
    targets: &[Target],
    fds: &[OsString],
    maps: &[OsString],
    hits: &mut Vec<Hit>,
    before: usize,
) {
    for (i, t) in targets.iter().enumerate() {
        let prefix = t.canonical.as_os_str().as_bytes();
        for f in fds.iter().filter(|f| under(f.as_bytes(), prefix)) {
            hits.push(Hit {
                target: i,
                pid,
                how: Use::OpenFile,
                path: f.clone(),
            });
        }
        for m in maps.iter().filter(|m| under(m.as_bytes(), prefix)) {
            if !hits[before..]
                .iter()
                .any(|h| h.target == i && h.path == *m && h.how == Use::MappedFile)
            {
                hits.push(Hit {
                    target: i,
                    pid,
                    how: Use::MappedFile,
                    path: m.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{link, process, snapshot, Told};

    fn target() -> Target {
        Target {
            given: "/srv/app/releases/1".into(),
            canonical: "/srv/app/releases/1".into(),
            dev: 1,
            ino: 1,
        }
    }

    /// Regression (issue 17): an `fd/` we may not read read as "no open files", so `in-use`
    /// said "not in use" over it. Denied is blindness; a process that exited is not.
    #[test]
    fn denied_is_blindness_and_gone_is_not() {
        let elsewhere = || link(b"/", 2, 20);
        let snap = snapshot(
            vec![
                process(10, 1, elsewhere(), 1.0, &["denied"]),
                process(11, 1, elsewhere(), 1.0, &["gone"]),
                process(12, 1, elsewhere(), 1.0, &["seen"]),
            ],
            10.0,
        );
        let mut source = Told {
            fds: vec![(10, Err(ReadError::Denied)), (11, Err(ReadError::Gone))],
            ..Told::new(&snap)
        };
        let targets = [target()];
        let asked: Vec<OsString> = std::env::args_os().skip(1).collect();
        let found = find_uses(&snap, &targets, &asked, &mut source);
        assert!(found.hits.is_empty());
        assert_eq!(found.blind, [10]);
        let said = answer(&targets, &found, &snap, &Owners::default());
        assert_eq!(said.exit, ExitCode::Unknown);

        // Without the denied process, nothing is in use and everything was seen.
        source.fds.retain(|(pid, _)| *pid != 10);
        let asked: Vec<OsString> = std::env::args_os().skip(1).collect();
        let found = find_uses(&snap, &targets, &asked, &mut source);
        assert!(found.blind.is_empty());
        let said = answer(&targets, &found, &snap, &Owners::default());
        assert_eq!(said.exit, ExitCode::Ok);
    }

    /// A path seen in use is an answer whatever else could not be seen.
    #[test]
    fn in_use_wins_over_cannot_tell() {
        let snap = snapshot(
            vec![
                process(10, 1, link(b"/", 2, 20), 1.0, &["denied"]),
                process(11, 1, link(b"/srv/app/releases/1", 1, 2), 1.0, &["holder"]),
            ],
            10.0,
        );
        let mut source = Told {
            fds: vec![(10, Err(ReadError::Denied))],
            ..Told::new(&snap)
        };
        let targets = [target()];
        let asked: Vec<OsString> = std::env::args_os().skip(1).collect();
        let found = find_uses(&snap, &targets, &asked, &mut source);
        assert_eq!(found.blind, [10]);
        let said = answer(&targets, &found, &snap, &Owners::default());
        assert_eq!(said.exit, ExitCode::Warning);
        assert_eq!(said.paths[0].holders.len(), 1);
    }
    /// Regression: run through the sudo rule, `sudo -n relwatch in-use PATH` waits for us with
    /// PATH in its arguments, and every release asked about was "in use by sudo". A process
    /// that launched us with our arguments asks the question; anyone else naming it uses it.
    #[test]
    fn the_sudo_that_runs_us_is_not_a_holder() {
        let root = || link(b"/", 2, 20);
        let path = "/srv/app/releases/1";
        let mut me = process(9999, 50, root(), 1.0, &["relwatch", "in-use", path]);
        me.ppid = 50;
        let snap = snapshot(
            vec![
                process(
                    50,
                    1,
                    root(),
                    1.0,
                    &["sudo", "-n", "relwatch", "in-use", path],
                ),
                process(60, 1, root(), 1.0, &["php", "/srv/app/releases/1/artisan"]),
                me,
            ],
            10.0,
        );
        let mut source = Told::new(&snap);
        let asked: Vec<OsString> = ["in-use", path].map(OsString::from).to_vec();
        let found = find_uses(&snap, &[target()], &asked, &mut source);
        let holders: Vec<i32> = found.hits.iter().map(|h| h.pid).collect();
        assert_eq!(holders, [60]);
        // Asked something else, the same sudo is any other process naming the path.
        let found = find_uses(&snap, &[target()], &[], &mut source);
        let holders: Vec<i32> = found.hits.iter().map(|h| h.pid).collect();
        assert_eq!(holders, [50, 60]);
    }
}
