//! `relwatch in-use PATH...`: is any process still using these release directories? What a
//! cleanup step calls before `rm -rf`. This file finds the holders; [`crate::report::in_use`]
//! prints them.
//!
//! It looks deeper than `check`: besides cwd, exe and command-line paths it reads every open
//! file descriptor and every memory-mapped file. Those reads are paid only by the processes
//! that could hold one: user-space processes in our mount namespace (kernel threads, zombies
//! and containers' processes, whose paths are not ours, are skipped and counted).
//!
//! It reads /proc with the scan's first stage ([`crate::scan::read`]) but places no process in
//! an app: the paths asked about need not belong to any deploy root, and a process holds a path
//! whichever release it was placed on, so placement and the rules have nothing to add.
//!
//! It only answers; it deletes nothing. Exit codes: 0 nobody uses them, 1 some process does, 3 a
//! bad argument.

use crate::cli::{InUseArgs, InUseFormat as Format};
use crate::escape::escape;
use crate::exit::ExitCode;
use crate::owner::Owners;
use crate::report::in_use::{Holder, InUse, PathUse, Use};
use crate::settings::UsageError;
use crate::snapshot::{Link, ProcSource, Snapshot};
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
    let snap = crate::scan::read(&mut source)?;
    let (hits, skipped) = find_uses(&snap, &targets, &mut source);
    let pids: Vec<i32> = {
        let mut p: Vec<i32> = hits.iter().map(|h| h.pid).collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let owners = crate::owner::collect_pids(&snap, &pids, &mut source);
    let answer = answer(&targets, &hits, &snap, &owners, skipped);
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
/// uses in the order found.
fn answer<'a>(
    targets: &'a [Target],
    hits: &'a [Hit],
    snap: &'a Snapshot,
    owners: &Owners,
    skipped: usize,
) -> InUse<'a> {
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
    InUse {
        paths,
        other_mount_ns: skipped,
        exit: if hits.is_empty() {
            ExitCode::Ok
        } else {
            ExitCode::Warning
        },
    }
}

/// Every use of every target, in pid order, and how many processes were skipped for living in
/// another mount namespace.
fn find_uses(
    snap: &Snapshot,
    targets: &[Target],
    source: &mut dyn ProcSource,
) -> (Vec<Hit>, usize) {
    let mut hits = Vec::new();
    let mut skipped = 0;
    for p in &snap.processes {
        if p.pid == snap.own_pid || p.kernel_thread || p.is_zombie() {
            continue;
        }
        // Unreadable counts as ours, as before; issue 17 acts on the difference.
        if source.foreign_mount_ns(p.pid).unwrap_or(false) {
            skipped += 1;
            continue;
        }
        let before = hits.len();
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
            for arg in p.cmdline.iter() {
                if under(arg.as_bytes(), prefix) {
                    hit(Use::Script, arg.to_os_string());
                }
            }
        }
        // Unreadable reads as none, as before; issue 17 acts on the difference.
        let fds = source.open_files(p.pid).unwrap_or_default();
        let wanted = |m: &[u8]| {
            targets
                .iter()
                .any(|t| under(m, t.canonical.as_os_str().as_bytes()))
        };
        let maps = source.mapped_files(p.pid, &wanted).unwrap_or_default();
        for (i, t) in targets.iter().enumerate() {
            let prefix = t.canonical.as_os_str().as_bytes();
            for f in fds.iter().filter(|f| under(f.as_bytes(), prefix)) {
                hits.push(Hit {
                    target: i,
                    pid: p.pid,
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
                        pid: p.pid,
                        how: Use::MappedFile,
                        path: m.clone(),
                    });
                }
            }
        }
        // A use seen only once the process was gone (pid reused) is dropped.
        // Unreadable counts as gone, as before; issue 17 acts on the difference.
        if hits.len() > before
            && source.stat(p.pid).ok().map(|s| s.start_ticks) != Some(p.start_ticks)
        {
            hits.truncate(before);
        }
    }
    (hits, skipped)
}
