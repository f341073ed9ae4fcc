//! A finding: what a rule decided, as facts. Numbers (pids, counts, durations in seconds),
//! names as the system gave them (unescaped) and a [`Remedy`] whose commands are data. No
//! sentence, no quoting, no escaping: `report::words` phrases all of it, the same way for
//! every output.
//!
//! A scan of 20,000 processes can make thousands of findings, kept until the report is out:
//! the facts are held no larger than the sentences they replace (a name is copied once, a
//! command's words are `&'static str`).

use super::kind::{Kind, Severity};
use crate::attribution::{Evidence, Name, ReleaseState};
use crate::owner::remedy::{Command, TreeFix};
use std::ffi::OsStr;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Always `detail.kind()`: set by [`Finding::new`].
    pub kind: Kind,
    pub severity: Severity,
    /// Index into the deploy roots.
    pub app: usize,
    pub release: Option<Name>,
    /// The processes, master (or top of the tree) first.
    pub pids: Vec<i32>,
    /// The master, when the first process has live children.
    pub master: Option<i32>,
    /// Who supervises the first process, for people (escaped); shared by the findings of one
    /// owner.
    pub owner: Option<Arc<str>>,
    /// The configured role of the first process, or of the finding (`duplicate`, `missing`).
    pub role: Option<String>,
    pub detail: Detail,
    pub remedy: Remedy,
    /// The evidence of its processes, shared with their placements.
    pub evidence: Vec<Arc<Evidence>>,
}

impl Finding {
    /// A finding about app `app` with no process, release, owner, role or evidence yet: rules
    /// fill in the rest with `Finding { pids, .. Finding::new(..) }`.
    pub fn new(severity: Severity, app: usize, detail: Detail, remedy: Remedy) -> Finding {
        Finding {
            kind: detail.kind(),
            severity,
            app,
            release: None,
            pids: Vec::new(),
            master: None,
            owner: None,
            role: None,
            detail,
            remedy,
            evidence: Vec::new(),
        }
    }
}

/// A process a finding names: its pid and its name (`None` when it was not in the snapshot).
#[derive(Debug, Clone, PartialEq)]
pub struct Proc {
    pub pid: i32,
    pub name: Option<Box<OsStr>>,
}

/// What each kind of rule found, beyond the fields every finding has.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    /// How the link is broken is the app's `current`.
    BrokenCurrent,
    /// The release is the finding's (`None`: one older than every existing release).
    DeletedRelease {
        top: Proc,
        workers: u32,
        /// The top has no live worker but reaped dying ones during the scan.
        dying: bool,
    },
    OldRelease {
        top: Proc,
        workers: u32,
        dying: bool,
        /// Seconds since the switch, and the grace period when still within it.
        switched: Option<Switched>,
    },
    Duplicate {
        allowed: Allowed,
        /// Oldest first.
        instances: Box<[Instance]>,
    },
    /// The instances on current are the finding's pids.
    Missing {
        min: usize,
        elsewhere: usize,
    },
    /// The zombies are the finding's pids after the parent.
    Zombie {
        parent: Proc,
        oldest_started_ago: f64,
    },
    Orphan {
        process: Proc,
        lost: Lost,
    },
    /// The role's (or, without one, the app's) processes that ended young.
    /// `scans` is 0 when process events saw them end; then `exits` counts how they ended,
    /// most common first.
    RestartLoop {
        ended: usize,
        window_secs: f64,
        scans: usize,
        exits: Box<[(crate::events::Ended, usize)]>,
        /// The dying-workers signature: they were all forked by this master (pid, state of
        /// its release), which runs a deleted or old release, and died within a second.
        master: Option<(i32, crate::attribution::ReleaseState)>,
    },
    /// `hidepid`: /proc lists no other user's process at all; else the finding's pids could
    /// not be inspected: they run as `uids` (ascending), and `failed` of them because a link
    /// could not be followed (its filesystem did not answer), not for lack of privilege.
    Unreadable {
        hidepid: bool,
        uids: Box<[u32]>,
        failed: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Switched {
    pub ago: f64,
    pub within_grace: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Allowed {
    Singleton,
    AtMost(usize),
}

/// One instance of a role, for `duplicate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub pid: i32,
    pub release: Option<Name>,
    pub state: ReleaseState,
    /// Start time, seconds since the epoch (`None`: not in the snapshot).
    pub started: Option<f64>,
}

/// How an orphan lost its supervisor.
#[derive(Debug, Clone, PartialEq)]
pub enum Lost {
    /// It carries `SUPERVISOR_ENABLED` and no supervisord is above it.
    SupervisordGone,
    /// Under PID 1 in a login session (the unit as systemd shows it).
    ByHand { session: Box<str> },
    /// Under PID 1 in no service.
    NoService,
    /// An older left-over under PID 1 in a service next to its newer main process.
    LeftOver { service: Box<str>, main: i32 },
}

/// What fixes a finding. Commands are data ([`Command`]: program, arguments, as whom); the
/// prose around them is `report::words`'.
#[derive(Debug, Clone, PartialEq)]
pub enum Remedy {
    /// Restart the top of a tree once, through what owns it.
    Restart(TreeFix),
    /// Restarting the parent (as `fix` says) clears its zombies.
    ClearZombies { parent: i32, fix: TreeFix },
    /// Stop the extra instances of a role and keep `keep`.
    StopExtras {
        keep: Box<[i32]>,
        stops: Box<[Command]>,
    },
    /// Start this many more instances of the finding's role from the app's link.
    StartMore {
        count: usize,
        managed_by: Option<Arc<str>>,
    },
    /// Point the link at a release atomically (`ln -sfn` a new link, `mv -T` it over).
    FixLink(Box<[Command; 2]>),
    /// No release exists to point the link at.
    DeployAgain,
    /// End an orphan; `service` when it is a left-over in that service, which does not end it.
    EndOrphan { pid: i32, service: Option<Box<str>> },
    /// Only root (or the two capabilities) sees these processes.
    RunAsRoot,
    /// Find out why they exit, in the logs of the finding's owner.
    ReadLogs,
}

impl Remedy {
    /// The commands this remedy names, in the order its words give them (`report::words`),
    /// with whom each runs as: what `--format json` gives scripts as `fix`. The words say what
    /// else must happen between them (edit a program's `directory=`, start a process again).
    pub fn commands(&self) -> Vec<Command> {
        match self {
            Remedy::Restart(fix) | Remedy::ClearZombies { fix, .. } => fix.commands(),
            Remedy::StopExtras { stops, .. } => stops.to_vec(),
            Remedy::FixLink(relink) => relink.to_vec(),
            Remedy::EndOrphan { pid, .. } => vec![Command::kill(*pid)],
            Remedy::StartMore { .. }
            | Remedy::DeployAgain
            | Remedy::RunAsRoot
            | Remedy::ReadLogs => Vec::new(),
        }
    }
}
