//! Words: every sentence relwatch says about a finding and the small words around them
//! (severities, durations, times, plurals, commands, the app header, the summary line), made
//! here and nowhere else. Rules hand over facts ([`Detail`], [`Remedy`]); renderers and
//! commands lay out what this module writes, so a finding reads the same in text, JSON,
//! Nagios and the agent's log.
//!
//! Every untrusted string (a name of an app, release, process, role or unit; a path) is
//! escaped here with [`escape`]. In a remedy, which an operator may paste into a root shell,
//! every argument of a command and every path or name of the sentence around it is instead
//! one [`shell_word`]: it reads back as exactly its bytes and shows no character a terminal
//! acts on. Owner labels come written that way already.

use super::Report;
use crate::attribution::{Evidence, How, Loaded, Wording};
use crate::escape::{escape, shell_word};
use crate::findings::{
    Allowed, Detail, Finding, Instance, Kind, Lost, Proc, Remedy, Severity, Switched,
};
use crate::layout::{Current, DeployRoot};
use crate::owner::remedy::{AsWhom, Command, Pm2Again, Restart, Stop, TreeFix, Unsupervised};
use std::ffi::OsStr;
use std::fmt::{self, Display, Formatter, Write};
use std::os::unix::ffi::OsStrExt;

/// The watchdog's message: a scan outlived `--deadline` (see `crate::watchdog`).
pub fn deadline_missed(limit: std::time::Duration) -> String {
    format!(
        "the scan did not finish within {}: a deploy root or a process's files may lie on a \
         file system that stopped answering (a stalled NFS or FUSE mount: `grep -E ' (nfs|fuse)' \
         /proc/self/mountinfo` lists them); fix or unmount it, or give a longer --deadline on a \
         host that is only slow",
        human_duration(limit.as_secs_f64())
    )
}

/// "3h 2m", "45s", "2d 4h": the two largest units, for people.
pub fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut parts = Vec::new();
    let mut rest = s;
    for (name, size) in units {
        if rest >= size || (parts.is_empty() && size == 1) {
            parts.push(format!("{}{}", rest / size, name));
            rest %= size;
        }
        if parts.len() == 2 {
            break;
        }
    }
    if !parts.is_empty() && parts.len() == 2 && parts[1].starts_with('0') {
        parts.pop();
    }
    parts.join(" ")
}

/// `one` for 1, `many` for any other number: `plural(n, "", "s")`.
pub fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// "1 app", "3 apps".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", plural(n, one, many))
}

/// One sentence for people about one piece of evidence, untrusted parts escaped.
pub fn evidence(e: &Evidence) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let path = || escape(e.path.as_deref().unwrap_or_default());
    Cow::Owned(match (&e.wording, e.how) {
        (Wording::Started(s), _) => {
            let mut out = format!(
                "started {} {} the switch to {}, through {}",
                human_duration(s.secs),
                if s.after { "after" } else { "before" },
                escape(&*s.current),
                path()
            );
            match &s.loaded {
                Loaded::Unknown => {}
                Loaded::Reloaded => out.push_str(
                    "; reloaded into the current release since (its cwd or exe is there now)",
                ),
                Loaded::Deleted => out.push_str(
                    "; every existing release was created after it started, so the release it loaded has been deleted",
                ),
                Loaded::Was {
                    release,
                    from,
                    until,
                    source,
                } => {
                    let _ = write!(
                        out,
                        "; {} {} was current from {}",
                        source.says(),
                        escape(&**release),
                        format_time(*from)
                    );
                    if let Some(until) = until {
                        let _ = write!(out, " to {}", format_time(*until));
                    }
                    out.push_str(match e.state {
                        crate::attribution::ReleaseState::Current => ", the current release again",
                        crate::attribution::ReleaseState::Deleted => ", a release since deleted",
                        _ => "",
                    });
                }
            }
            out
        }
        (Wording::Inherited { master }, _) => match &e.release {
            Some(r) => format!(
                "nothing of its own names a release: forked by master pid {master}, on release {}",
                escape(&**r)
            ),
            None => format!("nothing of its own names a release: forked by master pid {master}"),
        },
        (Wording::IsRelease, how) => format!(
            "{} is release {}",
            how.as_str(),
            escape(e.release.as_deref().unwrap_or_default())
        ),
        (Wording::Path, How::Script) if e.deleted => format!(
            "command line names {}, in a release that no longer exists",
            path()
        ),
        (Wording::Path, How::Script) => format!("command line names {}", path()),
        (Wording::Env(key), _) => format!("{key} names {}", path()),
        (Wording::Mount, how) => format!(
            "{} {}{}, through a mount in another mount namespace",
            held_as(how),
            path(),
            deleted(e)
        ),
        (Wording::Path, How::MappedFile | How::OpenFile) => {
            format!("{} {}{}", held_as(e.how), path(), deleted(e))
        }
        (Wording::Path, how) if e.deleted => format!("{} {} (deleted)", how.as_str(), path()),
        (Wording::Path, how) => format!("{} {}", how.as_str(), path()),
    })
}

/// How a held path is introduced: `maps X`, `holds open X`, `cwd X`.
fn held_as(how: How) -> &'static str {
    match how {
        How::MappedFile => "maps",
        How::OpenFile => "holds open",
        how => how.as_str(),
    }
}

/// What follows a path whose file was deleted.
fn deleted(e: &Evidence) -> &'static str {
    if e.deleted {
        " (deleted)"
    } else {
        ""
    }
}

/// `2026-11-21 12:00:03 UTC`
pub fn format_time(epoch: f64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(epoch.max(0.0));
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace('T', " ")
        .replace('Z', " UTC")
}

/// How a severity is written.
pub struct SeverityWords {
    /// In JSON and metric labels.
    pub name: &'static str,
    /// In Nagios lines and the agent's log.
    pub upper: &'static str,
    /// In the text report: information is not shouted.
    pub text: &'static str,
    /// The SGR color of `text` on a terminal.
    pub color: &'static str,
}

pub fn severity(s: Severity) -> &'static SeverityWords {
    const fn words(
        name: &'static str,
        upper: &'static str,
        text: &'static str,
        color: &'static str,
    ) -> SeverityWords {
        SeverityWords {
            name,
            upper,
            text,
            color,
        }
    }
    // In the order of `Severity`.
    static WORDS: [SeverityWords; 4] = [
        words("info", "INFO", "info", "36"),
        words("warning", "WARNING", "WARNING", "1;33"),
        words("unknown", "UNKNOWN", "UNKNOWN", "1;35"),
        words("critical", "CRITICAL", "CRITICAL", "1;31"),
    ];
    &WORDS[s as usize]
}

/// `text` in SGR color `code` when `color`, else as it is.
pub fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// `text` in bold when `color`.
pub fn bold(color: bool, text: &str) -> String {
    paint(color, "1", text)
}

/// The one-line summary every report starts with, without the status word.
pub fn summary(r: &Report) -> String {
    // A kind whose every finding is information (old processes within the grace period) says
    // so: the status word in front may come from another kind.
    let only_info = |kind| {
        r.findings
            .iter()
            .filter(|f| f.kind == kind)
            .all(|f| f.severity == Severity::Info)
    };
    let parts: Vec<String> = Kind::ordered_by(|a| Some(a.summary_place))
        .into_iter()
        .map(|about| (about, about.tally(r.findings)))
        .filter(|&(_, n)| n > 0)
        .map(|(about, n)| match only_info(about.kind) {
            true => format!("{} (info)", count(n, about.one, about.many)),
            false => count(n, about.one, about.many),
        })
        .collect();
    let mut scope = format!(
        "{}, {} scanned",
        count(r.roots.len(), "app", "apps"),
        count(r.snap.processes.len(), "process", "processes")
    );
    // Coverage is part of every answer: what could not be inspected, whatever app it could
    // belong to (the `unreadable` finding says which could run an app's code, and as whom).
    match (r.attr.not_inspected(), r.snap.hidden_pids) {
        (0, false) => {}
        (n, false) => scope.push_str(&format!(", {n} not inspected")),
        (n, true) => scope.push_str(&format!(
            ", {n} not inspected and other users' not even listed (hidepid)"
        )),
    }
    if parts.is_empty() {
        format!("every process runs the current release ({scope})")
    } else {
        format!("{} ({scope})", parts.join(", "))
    }
}

/// Where the app's link points: `"{noun} 67"`, or `current link dangling` when broken.
pub fn current(root: &DeployRoot, noun: &str) -> String {
    match root.current_release() {
        Some(c) => format!("{noun} {}", escape(c)),
        None => format!("current link {}", root.current.state_name()),
    }
}

/// `shop  /srv/shop  current 67`, with `, switched <time> (<age> ago)` when `now` is given and
/// the switch time known, and the name in bold when `color`.
pub fn app_header(root: &DeployRoot, now: Option<f64>, color: bool) -> String {
    let mut out = format!(
        "{}  {}  {}",
        bold(color, &escape(&root.name)),
        escape(&root.root),
        current(root, "current")
    );
    if let (Some(now), Some(t)) = (now, root.switch_time) {
        let _ = write!(
            out,
            ", switched {} ({} ago)",
            format_time(t),
            human_duration(now - t)
        );
    }
    out
}

/// A finding's sentence: what is wrong, with the names and numbers that show it.
pub struct Message<'a> {
    f: &'a Finding,
    root: &'a DeployRoot,
}

/// The finding of app `root`, in words.
pub fn message<'a>(f: &'a Finding, root: &'a DeployRoot) -> Message<'a> {
    Message { f, root }
}

impl Display for Message<'_> {
    fn fmt(&self, w: &mut Formatter) -> fmt::Result {
        let (f, root) = (self.f, self.root);
        match &f.detail {
            Detail::BrokenCurrent => broken_link(w, root),
            Detail::DeletedRelease {
                top,
                workers,
                dying,
            } => deleted_release(w, f, top, *workers, *dying),
            Detail::OldRelease {
                top,
                workers,
                switched,
                dying,
            } => old_release(w, f, root, top, (*workers, *dying), switched),
            Detail::Duplicate { allowed, instances } => duplicate(w, f, allowed, instances),
            Detail::Missing { min, elsewhere } => {
                let n = f.pids.len();
                write!(
                    w,
                    "role {} has {n} instance{} on current release {}, at least {min} expected",
                    role(f),
                    plural(n, "", "s"),
                    f.release.as_ref().map(escape).unwrap_or_default()
                )?;
                match elsewhere {
                    0 => Ok(()),
                    n => write!(w, ", and {n} on other releases"),
                }
            }
            Detail::Zombie {
                parent,
                oldest_started_ago,
            } => {
                let n = f.pids.len().saturating_sub(1);
                write!(
                    w,
                    "pid {} ({}) does not reap its children: {n} zombie{}, the oldest started {} ago",
                    parent.pid,
                    name(parent),
                    plural(n, "", "s"),
                    human_duration(*oldest_started_ago)
                )
            }
            Detail::Orphan { process, lost } => orphan(w, process, lost),
            Detail::RestartLoop {
                ended,
                window_secs,
                scans,
                exits,
                master,
            } => restart_loop(w, f, root, (*ended, *window_secs, *scans), exits, *master),
            Detail::Unreadable {
                hidepid,
                uids,
                failed,
            } => unreadable(w, f, *hidepid, uids, *failed),
        }
    }
}

/// A master with no live worker whose workers died and were reaped during the scan.
const DYING: &str = "whose workers die as it forks them (none alive, some reaped during the scan)";

fn deleted_release(
    w: &mut Formatter,
    f: &Finding,
    top: &Proc,
    workers: u32,
    dying: bool,
) -> fmt::Result {
    let release = match &f.release {
        Some(r) => format!("deleted release {}", escape(r)),
        None => "a deleted release".to_string(),
    };
    match workers {
        0 if dying => write!(
            w,
            "master pid {} ({}) {DYING} pointing at a deleted directory: runs from {release}",
            top.pid,
            name(top)
        ),
        0 => write!(w, "pid {} ({}) runs from {release}", top.pid, name(top)),
        n => write!(
            w,
            "master pid {} ({}) pointing at a deleted directory: runs from {release}, {n} worker{}",
            top.pid,
            name(top),
            plural(n as usize, "", "s")
        ),
    }
}

fn duplicate(
    w: &mut Formatter,
    f: &Finding,
    allowed: &Allowed,
    instances: &[Instance],
) -> fmt::Result {
    let allowed = match allowed {
        Allowed::Singleton => "singleton".to_string(),
        Allowed::AtMost(max) => format!("at most {max} allowed"),
    };
    write!(
        w,
        "{} instances of role {} ({allowed}), oldest first: ",
        instances.len(),
        role(f)
    )?;
    for (i, one) in instances.iter().enumerate() {
        write!(
            w,
            "{}pid {} on release {} ({}) started {}",
            if i == 0 { "" } else { "; " },
            one.pid,
            one.release
                .as_ref()
                .map(escape)
                .unwrap_or_else(|| "?".into()),
            one.state.as_str(),
            one.started.map(format_time).unwrap_or_default()
        )?;
    }
    Ok(())
}

fn orphan(w: &mut Formatter, process: &Proc, lost: &Lost) -> fmt::Result {
    write!(
        w,
        "pid {} ({}) lost its supervisor: ",
        process.pid,
        name(process)
    )?;
    match lost {
        Lost::SupervisordGone => w.write_str("it carries SUPERVISOR_ENABLED but no supervisord is above it: its supervisord died or was restarted without it"),
        Lost::ByHand { session } => write!(w, "its parent is PID 1 and it sits in login session {}: started by hand and left behind", escape(&**session)),
        Lost::NoService => w.write_str("its parent is PID 1 and it runs in no service: started by hand and left behind"),
        Lost::LeftOver { service, main } => write!(w, "an older left-over in {} next to its newer main process {main}", escape(&**service)),
    }
}

fn unreadable(
    w: &mut Formatter,
    f: &Finding,
    hidepid: bool,
    uids: &[u32],
    failed: u32,
) -> fmt::Result {
    if hidepid {
        return w.write_str("/proc is mounted with hidepid= (or subset=pid): other users' processes are not even listed, so any of them may run an old or deleted release");
    }
    let n = f.pids.len();
    write!(
        w,
        "{n} process{} that could run this app's code could not be inspected (",
        plural(n, "", "es")
    )?;
    let failed = failed as usize;
    match failed {
        0 => w.write_str("permission denied")?,
        _ if failed == n => {
            w.write_str("a link could not be followed: its filesystem did not answer")?
        }
        _ => write!(
            w,
            "permission denied; for {failed} a link could not be followed: its filesystem did not answer"
        )?,
    }
    write!(w, "), running as {}: pid ", whose(uids))?;
    list(w, f.pids.iter().take(10))?;
    w.write_str(if n > 10 { ", ..." } else { "" })
}

/// Whose processes these are, for people: `root, uid 1001, uid 1002` (the first ten uids).
pub fn whose(uids: &[u32]) -> String {
    let mut out: Vec<String> = uids
        .iter()
        .take(10)
        .map(|&uid| match uid {
            0 => "root".to_string(),
            uid => format!("uid {uid}"),
        })
        .collect();
    if uids.len() > 10 {
        out.push("...".into());
    }
    out.join(", ")
}

/// Items separated by commas.
fn list<T: Display>(w: &mut Formatter, items: impl Iterator<Item = T>) -> fmt::Result {
    for (i, item) in items.enumerate() {
        write!(w, "{}{item}", if i == 0 { "" } else { ", " })?;
    }
    Ok(())
}

/// A process's name, escaped (`?` when it was gone).
fn name(p: &Proc) -> String {
    p.name.as_deref().map(escape).unwrap_or_else(|| "?".into())
}

/// The finding's role, escaped.
fn role(f: &Finding) -> String {
    f.role.as_deref().map(escape).unwrap_or_default()
}

fn broken_link(w: &mut Formatter, root: &DeployRoot) -> fmt::Result {
    let link = escape(&root.link);
    match &root.current {
        Current::Ok { release } => write!(w, "{link} -> {}", escape(release)),
        Current::Missing => write!(w, "{link} does not exist"),
        Current::NotALink => write!(w, "{link} is not a symlink"),
        Current::Dangling { target } => write!(w, "{link} -> {} points at nothing", escape(target)),
        Current::NotADirectory { target } => {
            write!(w, "{link} -> {} is not a directory", escape(target))
        }
        Current::OutsideReleases { target } => write!(
            w,
            "{link} -> {} points outside the releases directory {}",
            escape(target),
            root.releases_dir
                .as_ref()
                .map(escape)
                .unwrap_or_else(|| "?".into())
        ),
    }
}

fn old_release(
    w: &mut Formatter,
    f: &Finding,
    root: &DeployRoot,
    top: &Proc,
    (workers, dying): (u32, bool),
    switched: &Option<Switched>,
) -> fmt::Result {
    match workers {
        0 if dying => write!(w, "master pid {} ({}) {DYING}", top.pid, name(top))?,
        0 => write!(w, "pid {} ({})", top.pid, name(top))?,
        n => write!(
            w,
            "master pid {} ({}) with {n} worker{}",
            top.pid,
            name(top),
            plural(n as usize, "", "s")
        )?,
    }
    match &f.release {
        Some(r) => write!(w, " runs old release {}", escape(r))?,
        None => w.write_str(" runs the release that was current before the switch")?,
    }
    write!(
        w,
        ", not current {} (",
        root.current_release()
            .map(escape)
            .unwrap_or_else(|| "?".into())
    )?;
    match switched {
        Some(Switched {
            ago,
            within_grace: Some(grace),
        }) => write!(
            w,
            "switched {} ago, within the {} grace period",
            human_duration(*ago),
            human_duration(*grace)
        )?,
        Some(Switched { ago, .. }) => write!(w, "switched {} ago", human_duration(*ago))?,
        None => {}
    }
    w.write_str(")")
}

/// A finding's remedy: the commands that fix it, with what an operator must know to run them.
pub struct Fix<'a> {
    f: &'a Finding,
    root: &'a DeployRoot,
}

/// The remedy of a finding of app `root`, in words.
pub fn remedy<'a>(f: &'a Finding, root: &'a DeployRoot) -> Fix<'a> {
    Fix { f, root }
}

impl Display for Fix<'_> {
    fn fmt(&self, w: &mut Formatter) -> fmt::Result {
        let link = shell_word(&self.root.link);
        match &self.f.remedy {
            Remedy::Restart(fix) => tree_fix(w, fix, &link),
            Remedy::ClearZombies { parent, fix } => {
                write!(w, "restarting pid {parent} clears its zombies: ")?;
                tree_fix(w, fix, &link)
            }
            Remedy::StopExtras { keep, stops } => {
                write!(
                    w,
                    "stop the extra instance{} and keep pid ",
                    plural(stops.len(), "", "s")
                )?;
                list(w, keep.iter())?;
                w.write_str(": ")?;
                commands(w, stops)
            }
            Remedy::StartMore { count, managed_by } => {
                let role = self.f.role.as_deref().map(shell_word).unwrap_or_default();
                write!(
                    w,
                    "start {count} more instance{} of role {role} from {link}",
                    plural(*count, "", "s")
                )?;
                match managed_by {
                    Some(owner) => write!(w, " (its instances are managed by {owner})"),
                    None => Ok(()),
                }
            }
            Remedy::FixLink(relink) => {
                w.write_str("point it at a release atomically, e.g. the newest: ")?;
                commands(w, &relink[..])
            }
            Remedy::DeployAgain => w.write_str("no release exists: deploy again"),
            Remedy::EndOrphan { pid, service } => {
                command(w, &Command::kill(*pid))?;
                match service {
                    Some(unit) => write!(w, " (it is not the main process of {}; restarting the unit with KillMode=control-group also ends it)", shell_word(&**unit)),
                    None => write!(w, "; if it should run, start it again under a supervisor from {link}"),
                }
            }
            Remedy::RunAsRoot => run_as_root(w, &self.f.detail),
            Remedy::ReadLogs if matches!(&self.f.detail, Detail::RestartLoop { master: Some(_), .. }) => {
                w.write_str("restart the master on the current release (see the deleted-release or old-release finding that names it for how)")
            }
            Remedy::ReadLogs => match &self.f.owner {
                Some(owner) => write!(w, "find out why they exit: read the logs of {owner} (journalctl, supervisorctl tail, the app's log)"),
                None => w.write_str("find out why they exit: read the app's log"),
            },
        }
    }
}

/// How to see what a run could not: root, the two capabilities, or (for deploy hooks) the
/// sudo rule; a link on a filesystem that does not answer not even root can follow.
fn run_as_root(w: &mut Formatter, detail: &Detail) -> fmt::Result {
    w.write_str("run relwatch as root, or grant it CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH; a deploy user can run `relwatch in-use` and `relwatch wait` as root through the sudo rule in /usr/share/relwatch/sudoers")?;
    match detail {
        Detail::Unreadable { failed, .. } if *failed > 0 => w.write_str("; a link on a filesystem that does not answer (a FUSE or network mount gone stale) cannot be followed even by root: mount it again, or end the process"),
        _ => Ok(()),
    }
}

/// What fixes a tree; `link` is the app's link as a shell word.
fn tree_fix(w: &mut Formatter, fix: &TreeFix, link: &str) -> fmt::Result {
    match fix {
        TreeFix::Vanished { pid } => write!(w, "restart pid {pid}"),
        TreeFix::SupervisordItself {
            pid,
            restart: r,
            as_whom,
        } => {
            write!(w, "supervisord (pid {pid}) itself runs from this release, and every program it starts without directory= inherits it: set directory={link} in its programs, restart supervisord (")?;
            restart(w, r, link)?;
            w.write_str("), then ")?;
            commands(w, &Command::supervisord_update(*as_whom))
        }
        TreeFix::Pm2GodItself { pid, as_whom } => {
            write!(w, "the PM2 God daemon (pid {pid}) itself runs from this release and keeps every app's cwd: ")?;
            commands(w, &Command::pm2_resurrect(*as_whom))?;
            write!(w, ", from {link}")
        }
        TreeFix::Restart { restart: r, stale } => {
            restart(w, r, link)?;
            let Some(s) = stale else { return Ok(()) };
            // "an old release", "a deleted release"
            let state = match s.state.as_str() {
                old @ "old" => format!("an {old}"),
                other => format!("a {other}"),
            };
            if s.pm2 {
                write!(w, "; the PM2 God daemon (pid {}) runs from {state} release too, so restarted apps keep it: ", s.pid)?;
                commands(w, &Command::pm2_resurrect(s.as_whom))
            } else {
                write!(w, "; supervisord (pid {}) runs from {state} release too, and programs without directory= inherit its cwd: set directory={link}, restart supervisord, then ", s.pid)?;
                commands(w, &Command::supervisord_update(s.as_whom))
            }
        }
    }
}

/// The restart-loop sentence: the dying-workers signature, a loop heard from process events,
/// or one inferred from scans.
fn restart_loop(
    w: &mut Formatter,
    f: &Finding,
    root: &DeployRoot,
    (ended, window_secs, scans): (usize, f64, usize),
    exits: &[(crate::events::Ended, usize)],
    master: Option<(i32, crate::attribution::ReleaseState)>,
) -> fmt::Result {
    if let Some((pid, state)) = master {
        write!(w, "master pid {pid} on {} release", state.as_str())?;
        if let Some(r) = &f.release {
            write!(w, " {}", escape(r))?;
        }
        if let Some(owner) = f.owner.as_deref().filter(|o| !o.starts_with("master pid")) {
            write!(w, " under {owner}")?;
        }
        write!(
            w,
            ": {ended} workers forked and died within {} in the last {} (",
            human_duration(crate::findings::restart_loop::DYING),
            human_duration(window_secs)
        )?;
        restart_exits(w, exits)?;
        return w.write_str("): it cannot start them from there");
    }
    match &f.role {
        Some(r) => write!(w, "role {}", escape(r))?,
        None => write!(w, "app {}", escape(&root.name))?,
    }
    if scans > 0 {
        return write!(
            w,
            ": {ended} processes ended soon after they started within {} min (seen in {scans} scans): a crash or restart loop",
            (window_secs / 60.0).round()
        );
    }
    if let Some(owner) = &f.owner {
        write!(w, " under {owner}")?;
    }
    write!(
        w,
        ": {ended} processes ended within {} of starting in the last {} (",
        human_duration(crate::findings::restart_loop::YOUNG),
        human_duration(window_secs)
    )?;
    restart_exits(w, exits)?;
    w.write_str("): a crash or restart loop")?;
    if matches!(exits, [(crate::events::Ended::Code(0), _)]) {
        w.write_str("; exiting 0, they look like success to their supervisor: look for a fatal error logged before the exit")?;
    }
    Ok(())
}

/// "all with exit 0", "exit 255 x12, signal 9 x1"
fn restart_exits(w: &mut Formatter, exits: &[(crate::events::Ended, usize)]) -> fmt::Result {
    use crate::events::Ended;
    let one = |w: &mut Formatter, e: &Ended| match e {
        Ended::Code(c) => write!(w, "exit {c}"),
        Ended::Signal(s) => write!(w, "killed by signal {s}"),
    };
    if let [(e, _)] = exits {
        w.write_str("all with ")?;
        return one(w, e);
    }
    for (i, (e, n)) in exits.iter().enumerate() {
        if i > 0 {
            w.write_str(", ")?;
        }
        one(w, e)?;
        write!(w, " x{n}")?;
    }
    Ok(())
}

/// What restarts one process; `link` is the app's link as a shell word.
fn restart(w: &mut Formatter, r: &Restart, link: &str) -> fmt::Result {
    match r {
        Restart::Command(c) => command(w, c),
        Restart::SupervisordUnnamed => w.write_str("supervisorctl restart <program> (its program name could not be read: see supervisorctl status)"),
        Restart::Pm2Unnamed => w.write_str("pm2 restart <app> (see pm2 list)"),
        Restart::Pm2Again(again) => pm2_again(w, again, link),
        Restart::ReloadMaster { server, .. } => {
            commands(w, &r.commands())?;
            write!(
                w,
                " ({} starts its workers again from the pool's chdir)",
                server.name
            )
        }
        Restart::KillAndStart { because, stop } => {
            kill(w, stop)?;
            write!(w, ", then start it again from {link}")?;
            match because {
                Unsupervised::OwnerUnread => w.write_str(" (its supervisor could not be read)"),
                Unsupervised::ByHand { session } => write!(
                    w,
                    ": nothing will restart it (it was started by hand in {})",
                    shell_word(&**session)
                ),
                Unsupervised::NoSupervisor => {
                    w.write_str(": nothing will restart it (no supervisor found)")
                }
            }
        }
    }
}

/// `kill -SIGNAL PID...` with why that signal and those pids, or why none.
fn kill(w: &mut Formatter, stop: &Stop) -> fmt::Result {
    let Some(c) = stop.command() else {
        return write!(w, "end pid {} by what started it (relwatch never signals PID 1, itself or a kernel thread)", stop.pid);
    };
    command(w, &c)?;
    let workers = stop.pids.len().saturating_sub(1);
    let signal = &stop.server.stop[1..];
    match (stop.server.name, workers) {
        ("unknown", 0) => Ok(()),
        ("unknown", n) => write!(w, " (the master and its {n} worker{}: they would outlive it)", plural(n, "", "s")),
        (server, 0) => write!(w, " ({server} stops gracefully on {signal})"),
        (server, n) => write!(w, " ({server} stops gracefully on {signal}; the master and its {n} worker{}: they would outlive it)", plural(n, "", "s")),
    }
}

/// A PM2 app registered again from the link: `pm2 restart` keeps its saved cwd.
fn pm2_again(w: &mut Formatter, again: &Pm2Again, link: &str) -> fmt::Result {
    let list = again.commands();
    if list.is_empty() {
        if let AsWhom::Uid(uid) = again.as_whom {
            write!(w, "as uid {uid}: ")?;
        }
        write!(
            w,
            "pm2 delete {} and start it again from {link} with --name {} --cwd {link}",
            shell_word(&*again.name),
            shell_word(&*again.name)
        )?;
    } else {
        commands(w, &list)?;
    }
    w.write_str(" (pm2 restart would keep the cwd PM2 saved for it, the old release)")
}

/// Commands run one after the other, each only when the one before succeeded.
fn commands(w: &mut Formatter, list: &[Command]) -> fmt::Result {
    for (i, c) in list.iter().enumerate() {
        if i > 0 {
            w.write_str(" && ")?;
        }
        command(w, c)?;
    }
    Ok(())
}

/// One command: `as uid N: ` when it must run as a user other than the operator (root), then
/// its line ([`words`]).
fn command(w: &mut Formatter, c: &Command) -> fmt::Result {
    if let AsWhom::Uid(uid) = c.as_whom {
        write!(w, "as uid {uid}: ")?;
    }
    words(w, c)
}

/// A command's line: the program, then each argument, each one shell word that reads back as
/// exactly its bytes ([`shell_word`]).
fn words(w: &mut Formatter, c: &Command) -> fmt::Result {
    let mut argv = c.argv();
    if let Some(program) = argv.next() {
        w.write_str(&shell_word(OsStr::from_bytes(&program)))?;
    }
    for arg in argv {
        w.write_char(' ')?;
        w.write_str(&shell_word(OsStr::from_bytes(&arg)))?;
    }
    Ok(())
}

/// One command as a line a shell runs (without whom it runs as): what a remedy shows of it.
pub fn command_line(c: &Command) -> String {
    struct Line<'a>(&'a Command);
    impl Display for Line<'_> {
        fn fmt(&self, w: &mut Formatter) -> fmt::Result {
            words(w, self.0)
        }
    }
    Line(c).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sentences of a placement by start time, as `check` has always printed them.
    #[test]
    fn evidence_of_what_a_process_holds() {
        use crate::attribution::{Evidence, How, ReleaseState, Wording};
        let ev = |how, path: &str, deleted, wording| Evidence {
            pid: 7,
            how,
            path: Some(std::ffi::OsStr::new(path).into()),
            deleted,
            release: Some(std::ffi::OsStr::new("1").into()),
            state: ReleaseState::Deleted,
            wording,
        };
        let lib = "/srv/app/releases/1/lib/ext.so";
        assert_eq!(
            evidence(&ev(How::MappedFile, lib, true, Wording::Path)),
            "maps /srv/app/releases/1/lib/ext.so (deleted)"
        );
        let log = "/srv/app/releases/1/storage/app.log\x1b";
        assert_eq!(
            evidence(&ev(How::OpenFile, log, false, Wording::Path)),
            "holds open /srv/app/releases/1/storage/app.log\\x1b"
        );
        let env = Wording::Env("PYTHONPATH");
        assert_eq!(
            evidence(&ev(How::InterpreterPath, "/srv/app/releases/1", false, env)),
            "PYTHONPATH names /srv/app/releases/1"
        );
        assert_eq!(
            evidence(&ev(
                How::Cwd,
                "/srv/app/releases/1/web",
                true,
                Wording::Mount
            )),
            "cwd /srv/app/releases/1/web (deleted), through a mount in another mount namespace"
        );
        assert_eq!(
            evidence(&ev(How::MappedFile, lib, false, Wording::Mount)),
            "maps /srv/app/releases/1/lib/ext.so, through a mount in another mount namespace"
        );
    }

    #[test]
    fn evidence_by_start_time() {
        use crate::attribution::{Evidence, How, Loaded, ReleaseState, Started, Wording};
        let ev = |after: bool, loaded: Loaded| Evidence {
            pid: 7,
            how: How::ViaCurrent,
            path: Some(std::ffi::OsStr::new("/srv/a/current/artisan\x1b").into()),
            deleted: false,
            release: None,
            state: ReleaseState::Old,
            wording: Wording::Started(Box::new(Started {
                secs: 3_725.0,
                after,
                current: std::ffi::OsStr::new("67").into(),
                loaded,
            })),
        };
        assert_eq!(
            evidence(&ev(true, Loaded::Unknown)),
            "started 1h 2m after the switch to 67, through /srv/a/current/artisan\\x1b"
        );
        let was = |source| Loaded::Was {
            release: std::ffi::OsStr::new("6\n").into(),
            from: 1_700_000_000.0,
            until: Some(1_700_000_600.0),
            source,
        };
        use crate::layout::history::Source;
        assert_eq!(
            evidence(&ev(false, was(Source::BirthTimes))),
            "started 1h 2m before the switch to 67, through /srv/a/current/artisan\\x1b; the releases' birth times say 6\\n was current from 2023-11-14 22:13:20 UTC to 2023-11-14 22:23:20 UTC"
        );
        let mut rolled_back = ev(false, was(Source::ReleasesLog));
        rolled_back.state = ReleaseState::Current;
        assert_eq!(
            evidence(&rolled_back),
            "started 1h 2m before the switch to 67, through /srv/a/current/artisan\\x1b; .dep/releases_log says 6\\n was current from 2023-11-14 22:13:20 UTC to 2023-11-14 22:23:20 UTC, the current release again"
        );
        assert_eq!(
            evidence(&ev(false, Loaded::Reloaded)),
            "started 1h 2m before the switch to 67, through /srv/a/current/artisan\\x1b; reloaded into the current release since (its cwd or exe is there now)"
        );
        assert_eq!(
            evidence(&ev(false, Loaded::Deleted)),
            "started 1h 2m before the switch to 67, through /srv/a/current/artisan\\x1b; every existing release was created after it started, so the release it loaded has been deleted"
        );
    }
    #[test]
    fn durations_for_people() {
        assert_eq!(human_duration(0.2), "0s");
        assert_eq!(human_duration(45.0), "45s");
        assert_eq!(human_duration(3600.0 * 3.0 + 125.0), "3h 2m");
        assert_eq!(human_duration(3600.0), "1h");
        assert_eq!(human_duration(86_400.0 * 2.0 + 3600.0 * 4.0), "2d 4h");
        assert_eq!(human_duration(-5.0), "0s");
    }

    use crate::owner::remedy::Arg;

    #[test]
    fn every_argument_is_one_shell_word() {
        let c = Command::new(
            "supervisorctl",
            [
                Arg::Word("restart"),
                Arg::name("queue:queue_00"),
                Arg::name(r"app@srv-shop\x2dnew.service"),
                Arg::name("a'; rm -rf / #"),
                Arg::name("$(reboot)"),
                Arg::name(""),
                Arg::name("bell\x07'!\\"),
                Arg::name(OsStr::from_bytes(b"\xff\xe2\x80\xae")),
            ],
        );
        assert_eq!(
            command_line(&c),
            r"supervisorctl restart queue:queue_00 'app@srv-shop\x2dnew.service' 'a'\''; rm -rf / #' '$(reboot)' '' $'bell\x07\x27\x21\\' $'\xff\xe2\x80\xae'"
        );
    }

    /// Bytes a user may put in a path or a name: shell and terminal specials, often.
    fn hostile() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let special = prop::sample::select(
            &b"'\"$`\\;&|()<>*?[]{}~=!# \t\n\x1b\x07\x7f\xff\xe2\x80\xae/.-:@%"[..],
        );
        prop::collection::vec(prop_oneof![special, any::<u8>()], 0..16)
    }

    /// Every remedy of names made of any bytes: no character a terminal must not see, each
    /// command it names written exactly as `command_line` writes it (checked with a shell in
    /// tests/properties.rs), in the order of `Remedy::commands`, and each path or name of its
    /// sentence as one shell word.
    #[test]
    fn remedies_of_hostile_names_quote_every_name() {
        use crate::escape::is_dangerous;
        use crate::findings::Severity;
        use crate::layout::Current;
        use crate::owner::remedy::{Arg, Restart, TreeFix, Unsupervised};
        use proptest::prelude::*;
        let config = ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        let names = (hostile(), hostile(), hostile(), 2..i32::MAX);
        proptest!(config, |((dir, release, name, pid) in names)| {
            let root = crate::testkit::root("app", &dir, Current::Missing, &[(&release, 1)]);
            let text = String::from_utf8_lossy(&name).into_owned();
            let named = |program, verb| Command::new(program, [Arg::Word(verb), Arg::name(OsStr::from_bytes(&name))]);
            let relink = [
                Command::new("ln", [Arg::Word("-sfn"), Arg::name(&root.releases[0].path), Arg::name(&root.link)]),
                Command::new("mv", [Arg::Word("-T"), Arg::name(&root.link), Arg::name(&root.link)]),
            ];
            let by_hand = Restart::KillAndStart { because: Unsupervised::ByHand { session: text.clone().into() }, stop: Box::new(Stop { pid, server: crate::owner::servers::unknown(), pids: [pid].into() }) };
            let pm2 = Restart::Pm2Again(Box::new(Pm2Again { name: OsStr::new(&text).into(), script: Some(OsStr::from_bytes(&name).into()), link: root.link.as_os_str().into(), as_whom: AsWhom::Uid(7) }));
            let remedies = [
                Remedy::FixLink(Box::new(relink)),
                Remedy::StopExtras { keep: [1].into(), stops: [named("supervisorctl", "stop"), Command::kill(pid)].into() },
                Remedy::Restart(TreeFix::Restart { restart: by_hand, stale: None }),
                Remedy::Restart(TreeFix::Restart { restart: pm2, stale: None }),
                Remedy::Restart(TreeFix::SupervisordItself { pid, restart: Restart::Command(named("systemctl", "restart")), as_whom: AsWhom::Uid(7) }),
                Remedy::StartMore { count: 2, managed_by: None },
                Remedy::EndOrphan { pid, service: Some(text.clone().into()) },
                Remedy::EndOrphan { pid, service: None },
            ];
            let link = shell_word(&root.link);
            for r in remedies {
                let f = Finding { role: Some(text.clone()), ..Finding::new(Severity::Critical, 0, Detail::BrokenCurrent, r) };
                let out = remedy(&f, &root).to_string();
                prop_assert!(!out.chars().any(is_dangerous), "{out}");
                let mut at = 0;
                for c in f.remedy.commands() {
                    let line = command_line(&c);
                    let found = out[at..].find(&line);
                    prop_assert!(found.is_some(), "{line} not in order in {out}");
                    at += found.unwrap_or_default() + line.len();
                }
                let names_in_prose = match &f.remedy {
                    Remedy::Restart(TreeFix::Restart { .. }) => vec![link.clone(), shell_word(&text)],
                    Remedy::Restart(_) | Remedy::EndOrphan { service: None, .. } => vec![link.clone()],
                    Remedy::StartMore { .. } => vec![link.clone(), shell_word(&text)],
                    Remedy::EndOrphan { .. } => vec![shell_word(&text)],
                    _ => vec![],
                };
                for word in names_in_prose {
                    prop_assert!(out.contains(&word), "{word} not in {out}");
                }
            }
        });
    }
}
