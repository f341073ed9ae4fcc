//! The command-line definition (clap derive): what argv may hold, and the help and man text for
//! it. It only parses: the commands turn these structs into settings and a /proc reader, and
//! nothing else looks at argv. Every subcommand's `--help` and man section are part of the
//! interface (packages ship the man page), so a change here keeps them byte for byte unless it
//! means to change them.

use clap::{Parser, Subcommand, ValueEnum};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

const ABOUT: &str = "Find processes that run an old or deleted release of a symlinked deploy";

const LONG_ABOUT: &str = "\
relwatch finds processes that are not running the release that `current` points at, on hosts \
that deploy into releases/N directories and switch a `current` symlink (Capistrano, Deployer, \
home-grown scripts). It reports masters whose release directory a cleanup already deleted, \
workers left on an old release, and broken `current` links, each with the evidence and the fix. \
A process's release is what it holds now (its cwd, its exe); its start time against the switch \
history (Deployer's .dep/releases_log, Capistrano's revisions.log, the switches the agent saw, \
else the releases' birth times) decides only when nothing it holds names a release (docs/ATTRIBUTION.md).";

const EXIT_CODES: &str = "\
Exit codes (the monitoring-plugin convention):
  0  OK        every process runs the current release (information only)
  1  WARNING   processes on an old release after the grace period, zombies, orphans
  2  CRITICAL  a process on a deleted release, a broken current link, a duplicate singleton or
               missing workers (roles from the config file)
  3  UNKNOWN   bad arguments, or processes that could run an app's code could not be inspected";

#[derive(Debug, Parser)]
#[command(name = "relwatch", version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Report processes on old or deleted releases, and broken current links
    #[command(
        long_about = "Scan every process once and report, per deploy root, the processes that run \
a release other than the one `current` points at (old-release), the ones whose release directory \
no longer exists (deleted-release, with masters named), broken current links (broken-current), \
defunct children an app process does not reap (zombie) and app processes that lost their \
supervisor (orphan; a process started by hand only when left on an old release). Every finding \
names the process's owner (systemd unit, supervisord program, PM2 app, runit or s6 service, login \
session) and the exact command that fixes it.",
        after_help = concat!("Examples:
  relwatch check                       discover deploy roots under /var/www /srv /opt /home/* /data
  relwatch check /srv/shop             a directory holding `current`
  relwatch check /var/www/html         the `current` link itself, wherever it lives
  relwatch check /srv/shop --grace 0s --format json | jq .findings
  relwatch check --format nagios                       a Nagios/Icinga check (exit 0-3)
  relwatch check --format prometheus -o /var/lib/prometheus/node-exporter/relwatch.prom

", "Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad arguments, or processes that could \
not be inspected).")
    )]
    Check(CheckArgs),

    /// Show every process of each app as a tree: release, owner, master, workers
    #[command(
        long_about = "Show every process placed in an app as a tree: per release (current first), per owner (systemd unit, supervisord program, PM2 app, runit or s6 service, login session, or unsupervised), then master before workers, with state, age and what placed each process there. Exits 0 whatever it shows (use `check` for alerting), 3 on bad arguments. It speaks text and JSON only: a monitor reads the exit code, so the Nagios and Prometheus formats are `check`'s.",
        after_help = "Examples:
  relwatch ps /srv/shop
  relwatch ps --format json     the same document as `check --format json`",
        mut_arg("format", ps_format)
    )]
    Ps(CheckArgs),

    /// After a deploy's switch: wait until every process runs the current release
    #[command(
        long_about = "Block until every process of the app runs the release `current` points at, \
and every role of the config (--config) has its `min` processes there, then exit 0. Call it from a deploy hook right after the symlink switch. Workers still on an old \
release are polled by pid and start time, so the wait ends within a fraction of a second of the \
last one being replaced, and a reused pid is never taken for an old worker. It reports; it \
restarts nothing, unless given --restart: then it is `relwatch restart --yes` (see its help and \
docs/RESTART.md).",
        after_help = "Exit codes:
  0  every process runs the current release (and every role has its min there)
  1  timed out: each process still on an old release, and each role still short of its min,
     is listed with its owner or role and fix
  2  a process runs from a deleted release, or current is broken: waiting cannot fix it
  3  cannot tell: processes that could run the app's code could not be inspected (run it as
     root, or through the sudo rule in /usr/share/relwatch/sudoers); or bad arguments

Examples:
  relwatch wait /srv/shop --timeout 2m
  ln -s releases/65 current.new && mv -T current.new current && relwatch wait ."
    )]
    Wait(WaitArgs),

    /// Restart what runs an old or deleted release, through its supervisor, and wait for it
    #[command(
        long_about = "Plan from one scan one action per owner of the processes on an old or \
deleted release (a systemd unit, a supervisord program, a PM2 app, a runit service, an \
unsupervised app server master; never one per worker), confirm each with the supervisor's own \
view (systemctl show, supervisorctl pid, pm2 jlist with the God daemon's own PM2_HOME, sv \
status: the pid must be the one the scan saw; anything that does not confirm is skipped and \
said, never guessed), run the remedies' fixed commands with argv \
arrays (no shell) as the right user, each with a timeout, then wait until every process the \
plan covered is replaced by one on the current release. Without --yes it asks once on a \
terminal and refuses without one. It never touches relwatch's own units, PID 1, or anything \
outside the apps it checked. A PM2 app is registered again from the current link (pm2 \
delete, pm2 start, pm2 save, one action). An unsupervised process is only ended (with the remedy's \
signal): nothing starts it again, and the run says so and exits 1 (docs/RESTART.md).",
        after_help = "Exit codes:
  0  converged: every process the plan covered was replaced by one on the current release
     (or nothing needed a restart; --dry-run: every item confirmed)
  1  an action failed, timed out, was skipped (not confirmed by its supervisor; --dry-run:
     would be skipped), or ended an unsupervised process that nothing starts again; each is
     listed with its output
  2  a finding no restart can fix remains (a broken current link)
  3  could not plan: processes that could run the app's code could not be inspected, no
     terminal and no --yes, the plan declined, or bad arguments

Examples:
  relwatch restart /srv/shop --dry-run
  relwatch restart /srv/shop --yes --timeout 2m
  relwatch restart --kinds deleted-release --yes --format json"
    )]
    Restart(RestartArgs),

    /// Before a cleanup: is any process still using these release directories?
    #[command(
        name = "in-use",
        long_about = "Exit 0 when no process uses any of the given paths, 1 with the list of \
processes that do (pid, name, owner, and how: cwd, exe, script, open file, mapped file). It looks \
deeper than `check`: every open file and memory map of every user-space process. Call it before \
`rm -rf` of an old release. When it cannot see every process (another user's, without root) and \
sees none using the paths, it cannot tell: exit 3, never 0.",
        after_help = "Exit codes: 0 not in use, 1 in use, 3 cannot tell (processes it could not inspect \
could hold the paths: run it as root, or through the sudo rule in /usr/share/relwatch/sudoers) or \
bad arguments (e.g. a path that does not exist).

Examples:
  relwatch in-use /srv/shop/releases/60 && rm -rf /srv/shop/releases/60
  relwatch in-use /srv/shop/releases/* --format json"
    )]
    InUse(InUseArgs),

    /// The agent: rescan when a deploy switches or deletes a release, or a flagged process exits
    #[command(
        long_about = "Run until stopped, rescanning when something changes: inotify on each deploy \
root, its releases directory and its parent (a switch, a delete, a root created again), the exit \
of any process a finding names, the end of the grace period after a switch, and a full rescan every --interval for what nothing \
announces (zombies, duplicates, orphans). As root it also hears the kernel's process events \
(fork, exec, exit with exit code) and reports a restart-loop seconds after a storm starts, with \
its count, exit codes and supervisor; without them it infers restarts from its scans and says \
so at start. Between those it sleeps and uses no CPU. \
Every change of findings is logged to stderr, one line per finding that appeared, changed or \
cleared (many alike in one scan are one line; at most 20 lines a minute per kind and root, the \
rest counted); process events are counted in one line a minute, never logged one by one; with \
--textfile DIR it rewrites DIR/relwatch.prom atomically after every scan. It degrades, never \
dies: it raises its open files limit, holds pidfds for at most half of it (polling the rest), \
rescans a root in constant churn at most every 5s, and a scan that fails is logged and written \
as UNKNOWN, then retried within 10s. SIGTERM ends it cleanly.",
        after_help = "Examples:
  relwatch watch /srv/shop --textfile /var/lib/prometheus/node-exporter
  relwatch watch --config /etc/relwatch/config.yaml --interval 2m"
    )]
    Watch(WatchArgs),

    /// Play the incident in a throwaway deploy root, check it, and explain the report
    #[command(
        long_about = "Build a throwaway deploy root in a temp directory, start a small \
master with two workers from current/, deploy twice, delete the first release the way a cleanup \
step does, run `check`, and explain each line of the report. Then end its processes and remove \
the directory (also on Ctrl-C). It needs nothing but this binary: the master and workers are \
relwatch itself."
    )]
    Demo,

    /// (internal) a process of the demo
    #[command(name = "__demo-process", hide = true)]
    DemoProcess {
        #[arg(value_parser = ["master", "worker"])]
        role: String,
    },

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_help = "Examples:
  relwatch completions bash > /usr/share/bash-completion/completions/relwatch
  relwatch completions zsh > /usr/share/zsh/vendor-completions/_relwatch")]
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff), generated from this same definition
    #[command(after_help = "Example:\n  relwatch man | gzip > /usr/share/man/man1/relwatch.1.gz")]
    Man,

    /// Validate the config file, or print a commented example
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and print the effective configuration, every default filled in
    #[command(
        after_help = "Exit codes: 0 valid, 3 refused (the message names file, line, column and key)."
    )]
    Check {
        /// The file [default: /etc/relwatch/config.yaml]
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Print a commented example config file
    Example,
}

// What `check`, `ps`, `wait` and `watch` share: the deploy roots, the config file and where to
// discover roots. The help below is `check`'s; `wait_words` and `watch_words` give the other
// two their own, since every --help and man section is pinned byte for byte. (A `//` comment:
// a doc comment here would become the `about` of each command that flattens this.)
#[derive(Debug, Clone, clap::Args)]
pub struct RootsArgs {
    /// Deploy roots: a directory holding a `current` link, or the `current` link itself.
    /// Without any, relwatch discovers them (see --discover).
    #[arg(value_name = "ROOT")]
    pub roots: Vec<PathBuf>,

    /// Config file: apps, roles, grace periods [default: /etc/relwatch/config.yaml when it
    /// exists]
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where to look for deploy roots when none is named (repeatable; a trailing /* means
    /// every directory in it; one that does not exist is an error, exit 3) [default: /var/www
    /// /srv /opt /home/* /data]
    #[arg(long, value_name = "DIR")]
    pub discover: Vec<PathBuf>,
}

/// How the pass over /proc runs.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ScanArgs {
    /// Threads that read /proc: each reads a share of the pids, so a scan of many thousands of
    /// processes ends sooner (the CPU time stays the same); the maps and open files of
    /// `--deep` (or of the default's candidates) too. 1 reads with the main thread only
    /// [default: the CPUs relwatch may use, at most 4; one thread below 512 processes, or
    /// below 32 whose maps are read]
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,

    /// Give up on a scan that takes longer than this: the run ends with UNKNOWN (exit 3) and
    /// says why, in the asked format. A stalled NFS or FUSE mount under a deploy root must not
    /// hang a monitor (e.g. 30s, 2m; at most 365d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub deadline: Duration,

    /// Read the mapped and open files of every process: a worker that keeps a release only
    /// through a shared library, a log or a database it holds open. Without it they are read
    /// only for processes that cwd, exe and command line do not place and that could run an
    /// app's code (running as the deploy root's owner or as a uid already running the app, or
    /// a child of an app's process); --deep costs about what lsof costs
    #[arg(long)]
    pub deep: bool,
}

/// The `--discover` help of `wait` and `watch`.
const DISCOVER_NAMED: &str = "Where to look for deploy roots when none is named (repeatable; \
one that does not exist is an error, exit 3)";

#[derive(Debug, clap::Args)]
#[command(mut_args(wait_words))]
pub struct WaitArgs {
    /// Give up after this long (e.g. 30s, 2m, 1h; at most 365d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub timeout: Duration,

    /// Restart what still runs an old or deleted release first, through its supervisor, as
    /// `relwatch restart --yes` does (for deploy recipes that opt in; docs/RESTART.md)
    #[arg(long)]
    pub restart: bool,

    #[command(flatten)]
    pub roots: RootsArgs,

    #[command(flatten)]
    pub scan: ScanArgs,
}

/// `restart`'s arguments.
#[derive(Debug, clap::Args)]
#[command(mut_args(restart_words))]
pub struct RestartArgs {
    /// The findings whose processes to restart (comma-separated)
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KINDS",
          default_values_t = [RestartKind::DeletedRelease, RestartKind::OldRelease])]
    pub kinds: Vec<RestartKind>,

    /// Print the plan (each action confirmed with its supervisor) and exit 0: change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Act without asking (a deploy hook, a script); without it, ask once on a terminal and
    /// refuse (exit 3) without one
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Give up after this long, the actions and the wait for their processes together (e.g.
    /// 30s, 2m; at most 365d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2m")]
    pub timeout: Duration,

    /// Run up to N actions at once
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,

    /// Output format: the plan, each action and its outcome go to stderr one line each
    /// either way; json also prints them as one document on stdout (docs/JSON.md)
    #[arg(long, short = 'f', value_enum, default_value_t = RestartFormat::Text)]
    pub format: RestartFormat,

    #[command(flatten)]
    pub roots: RootsArgs,

    #[command(flatten)]
    pub scan: ScanArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RestartFormat {
    /// The verdict line on stdout, for people
    Text,
    /// One JSON document: the plan and each outcome (schema: docs/JSON.md)
    Json,
}

/// The finding kinds `restart` acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RestartKind {
    /// Processes on a release directory that no longer exists
    DeletedRelease,
    /// Processes on an existing release that is not current
    OldRelease,
    /// Parents that do not reap their zombies
    Zombie,
}

/// `restart`'s help for the shared arguments.
fn restart_words(arg: clap::Arg) -> clap::Arg {
    match arg.get_id().as_str() {
        "discover" => arg.help(DISCOVER_NAMED),
        "config" => arg.help("Config file [default: /etc/relwatch/config.yaml when it exists]"),
        _ => arg,
    }
}

/// `wait`'s help for the shared arguments, and its order: --discover before --config.
fn wait_words(arg: clap::Arg) -> clap::Arg {
    match arg.get_id().as_str() {
        "discover" => arg.help(DISCOVER_NAMED).display_order(1),
        "config" => arg
            .help(
                "Config file: apps and roles (a duplicate singleton ends the wait with 2) \
                 [default: /etc/relwatch/config.yaml when it exists]",
            )
            .display_order(2),
        _ => arg,
    }
}

#[derive(Debug, clap::Args)]
#[command(mut_args(watch_words))]
pub struct WatchArgs {
    #[command(flatten)]
    pub roots: RootsArgs,

    /// Rewrite DIR/relwatch.prom after every scan (node_exporter's textfile directory)
    #[arg(long, value_name = "DIR")]
    pub textfile: Option<PathBuf>,

    /// Full rescan at least this often (at most 365d); with the roots from discovery (none
    /// named, no apps in the config), a new search for deploy roots too
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub interval: Duration,

    /// Grace period after a switch, at most 30d [default: the config file's, else 5m]
    #[arg(long, value_name = "DURATION", value_parser = parse_grace)]
    pub grace: Option<Duration>,

    /// restart-loop: more than this many processes of a role (or app) that ended within 10s
    /// of starting, within --restart-window (heard from process events as root; else seen in
    /// at least 3 scans)
    #[arg(long, value_name = "N", default_value_t = crate::findings::restart_loop::DEFAULT_LIMIT)]
    pub restart_limit: usize,

    /// restart-loop: the window over which ended processes are counted (at most 365d)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30m")]
    pub restart_window: Duration,

    /// (tests) Do not listen to the kernel's process events: infer restarts from scans, as
    /// where the events are unavailable. Same as RELWATCH_NO_PROC_EVENTS=1.
    #[arg(long, hide = true)]
    pub no_proc_events: bool,

    #[command(flatten)]
    pub scan: ScanArgs,
}

/// `watch`'s help for the shared arguments.
fn watch_words(arg: clap::Arg) -> clap::Arg {
    match arg.get_id().as_str() {
        "roots" => arg.help(
            "Deploy roots: a directory holding a `current` link, or the `current` link itself. \
             Without any, the config file's apps, else discovery",
        ),
        "config" => arg.help("Config file [default: /etc/relwatch/config.yaml when it exists]"),
        "discover" => arg.help(DISCOVER_NAMED),
        _ => arg,
    }
}

#[derive(Debug, clap::Args)]
pub struct InUseArgs {
    /// Release directories (or any paths) about to be deleted
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,

    /// Output format
    ///
    /// With json an error, a bad argument too, is a JSON document on stdout with exit 3:
    /// `{"status": "unknown", "exit_code": 3, "error": ...}`.
    #[arg(long, short = 'f', value_enum, default_value_t = InUseFormat::Text)]
    pub format: InUseFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InUseFormat {
    /// One block per path, for people
    Text,
    /// One JSON document (schema: docs/JSON.md)
    Json,
}

/// `ps`'s `--format`: text and JSON only. `ps` exits 0 whatever it shows, and a monitor reads
/// the exit code, so `ps --format nagios` would report every state as OK: the monitoring
/// formats are `check`'s, and asking `ps` for one is a usage error (an UNKNOWN status line).
fn ps_format(arg: clap::Arg) -> clap::Arg {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    arg.help("Output format (nagios and prometheus are check's)")
        .long_help(
            "Output format (nagios and prometheus are check's: ps exits 0 whatever it shows)\n\n\
         With json an error, a bad argument too, is a JSON document on stdout (or in --output) \
         with exit 3: `{\"status\": \"unknown\", \"exit_code\": 3, \"error\": ...}`.",
        )
        .value_parser(
            PossibleValuesParser::new([
                PossibleValue::new("text").help("A tree per app, for people"),
                PossibleValue::new("json").help(
                    "The same document as check --format json (schema: docs/JSON.md); its \
                 status and exit_code are check's verdict",
                ),
            ])
            .map(|v| match v.as_str() {
                "json" => Format::Json,
                _ => Format::Text,
            }),
        )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Grouped by app and release, for people
    #[default]
    Text,
    /// One JSON document (schema: docs/JSON.md)
    Json,
    /// A monitoring-plugin status line with performance data (Nagios, Icinga, Naemon, Sensu)
    Nagios,
    /// The Prometheus text format, for node_exporter's textfile collector
    Prometheus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Color when stdout is a terminal and NO_COLOR is not set
    Auto,
    Always,
    Never,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Output format
    ///
    /// An error, a bad argument too, is then a document of that format on stdout (or in
    /// --output) with exit 3: nagios `RELWATCH UNKNOWN - ...`, json `{"status": "unknown",
    /// "exit_code": 3, "error": ...}`, prometheus `relwatch_exit_code 3` and `relwatch_error 1`.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// How long after a switch processes may stay on the old release before it is a warning
    /// (e.g. 0s, 90s, 5m, 1h; at most 30d) [default: the config file's, else 5m]
    #[arg(long, value_name = "DURATION", value_parser = parse_grace)]
    pub grace: Option<Duration>,

    #[command(flatten)]
    pub roots: RootsArgs,

    /// When to color the text output
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Write the report to FILE instead of stdout, atomically (an unnamed temp file in the same
    /// directory, renamed over it: a run killed meanwhile leaves nothing) and mode 0644, e.g.
    /// node_exporter's textfile directory
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub scan: ScanArgs,
}

/// The longest `--timeout`, `--interval` or `--restart-window`: a year. Longer is a typo, and
/// a bound keeps deadlines (`now + timeout`) far from overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// Parse a humantime duration ("0s", "90s", "5m", "1h 30m") of at most [`MAX_DURATION`], with
/// a message that teaches.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    bounded_duration(s, MAX_DURATION, "365d")
}

/// A `--grace` period: at most 30 days, as in the config file
/// ([`crate::config::MAX_GRACE`]).
pub fn parse_grace(s: &str) -> Result<Duration, String> {
    bounded_duration(s, crate::config::MAX_GRACE, "30d")
}

fn bounded_duration(s: &str, max: Duration, max_words: &str) -> Result<Duration, String> {
    const EXAMPLES: &str = "expected a duration such as 0s, 90s, 5m or 1h 30m";
    let d = humantime::parse_duration(s.trim()).map_err(|e| format!("{e}: {EXAMPLES}"))?;
    if d > max {
        return Err(format!(
            "{} is longer than the longest allowed here, {max_words}: {EXAMPLES}",
            crate::escape::escape(s.trim())
        ));
    }
    Ok(d)
}

/// What a failed run is written as, and where: the format the command line asked for, and the
/// file the report would have gone to (stdout when `None`). A monitor reads only that: NRPE drops
/// stderr, jq reads stdout, node_exporter reads the textfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorOutput {
    pub format: Format,
    pub file: Option<PathBuf>,
}

impl Cli {
    /// Where an error of this (parsed) command line goes.
    /// The scan deadline of a command that scans (see [`crate::watchdog`]).
    pub fn scan_deadline(&self) -> Option<Duration> {
        match &self.command {
            Command::Check(a) | Command::Ps(a) => Some(a.scan.deadline),
            Command::Wait(a) => Some(a.scan.deadline),
            Command::Watch(a) => Some(a.scan.deadline),
            Command::Restart(a) => Some(a.scan.deadline),
            Command::InUse(_) => Some(crate::watchdog::DEFAULT),
            _ => None,
        }
    }

    pub fn error_output(&self) -> ErrorOutput {
        match &self.command {
            Command::Check(a) | Command::Ps(a) => ErrorOutput {
                format: a.format,
                file: a.output.clone(),
            },
            // The agent's failures land in its textfile, as its failed scans do.
            Command::Watch(a) if a.textfile.is_some() => ErrorOutput {
                format: Format::Prometheus,
                file: a.textfile.as_ref().map(|dir| dir.join("relwatch.prom")),
            },
            Command::InUse(a) if a.format == InUseFormat::Json => ErrorOutput {
                format: Format::Json,
                file: None,
            },
            Command::Restart(a) if a.format == RestartFormat::Json => ErrorOutput {
                format: Format::Json,
                file: None,
            },
            _ => ErrorOutput::default(),
        }
    }
}

impl ErrorOutput {
    /// Where an error goes when clap refused the command line, read from argv as given:
    /// `--format X`, `--format=X`, `-f X`, `-fX` (the last one that names a format, even when
    /// that format is the error, as in `in-use --format nagios`) and `--output`/`-o` the same
    /// way, up to a `--`. Whatever the subcommand: `relwatch chek --format nagios` is still
    /// asked of a poller that reads only stdout.
    pub fn from_argv(argv: &[OsString]) -> Self {
        let mut to = ErrorOutput::default();
        let args = argv.get(1..).unwrap_or_default();
        for (i, arg) in args.iter().enumerate() {
            if arg == "--" {
                break;
            }
            let next = args.get(i + 1).map(OsString::as_os_str);
            if let Some(v) = option_value(arg, next, "--format", "-f") {
                if let Some(format) = v.to_str().and_then(|v| Format::from_str(v, false).ok()) {
                    to.format = format;
                }
            } else if let Some(v) = option_value(arg, next, "--output", "-o") {
                to.file = Some(PathBuf::from(v));
            }
        }
        to
    }
}

/// The value `arg` gives option `long`/`short`: in the next argument (`--format json`, `-f
/// json`) or in itself (`--format=json`, `-fjson`, `-f=json`).
fn option_value<'a>(
    arg: &'a OsStr,
    next: Option<&'a OsStr>,
    long: &str,
    short: &str,
) -> Option<&'a OsStr> {
    let arg = arg.as_bytes();
    if arg == long.as_bytes() || arg == short.as_bytes() {
        return next;
    }
    let inline = arg
        .strip_prefix(long.as_bytes())
        .and_then(|v| v.strip_prefix(b"="))
        .or_else(|| {
            let v = arg.strip_prefix(short.as_bytes())?;
            Some(v.strip_prefix(b"=").unwrap_or(v))
        })?;
    Some(OsStr::from_bytes(inline))
}

/// A clap error as one line for a document: `invalid value '5' for '--grace <DURATION>': ...`,
/// without the usage and the pointer to --help that stderr also shows.
pub fn usage_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
        })
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect();
    parts.join(" ")
}
