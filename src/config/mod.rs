//! The configuration file: where it is, what it may say, and why a file is refused.
//!
//! This module owns reading `/etc/relwatch/config.yaml` (or `--config FILE`) into [`Config`]:
//! the ownership and mode checks (relwatch runs as root, and the file decides what it reports),
//! the size limit, YAML parsing with serde-saphyr, and every schema and semantic check. Every
//! refusal is a typed [`ConfigError`] whose message names the file, line, column, key path and
//! what was expected, with strings from the file escaped, because it reaches a terminal.
//! Turning an error into exit code 3 is the caller's business.
//!
//! Precedence: built-in defaults < the file < command-line flags ([`Overrides`]).
//!
//! Layout: `tree` (YAML to located nodes), `build` (nodes to typed settings and checks),
//! `render` (the effective configuration as YAML), `example` (the commented example).

mod build;
mod example;
mod render;
mod tree;

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use example::example;

/// Where the configuration is read from when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/relwatch/config.yaml";

/// How long a process may run a non-current release before `old-release` becomes a warning,
/// when neither the command line nor the file says otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5 * 60);

/// Largest configuration file accepted, in bytes (1 MiB). A real one is a few KiB.
pub const MAX_SIZE: u64 = 1024 * 1024;

/// Longest grace period accepted. Longer values are almost certainly a typo, and bounding the
/// value keeps time arithmetic elsewhere far from overflow.
pub const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Grace period for every app without its own; `None` means [`DEFAULT_GRACE`].
    pub grace: Option<Duration>,
    /// Absolute directories to search for deploy roots when no app is listed.
    pub discover: Vec<PathBuf>,
    pub apps: Vec<AppConfig>,
    /// The file this came from; `None` for built-in defaults.
    pub source: Option<PathBuf>,
}

/// One deployed application.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Unique, non-empty, no control characters.
    pub name: String,
    /// Absolute: a directory holding `current`, or the `current` link itself.
    pub root: PathBuf,
    /// Relative to `root`, without `..`; `None` when not set.
    pub releases: Option<PathBuf>,
    /// This app's grace period; `None` means [`Config::grace`].
    pub grace: Option<Duration>,
    /// Processes whose command line (arguments joined by spaces) matches are left out.
    pub ignore: Vec<regex::Regex>,
    pub roles: Vec<Role>,
    /// What an `orphan` finding is worth for this app.
    pub orphans: Orphans,
    /// `user:`: the uid the app's processes run as, besides the releases' owner and root:
    /// only processes of these uids count as instances of a role.
    pub user: Option<u32>,
}

/// What an `orphan` finding is worth for an app (`orphans:`): hosts that start workers by hand
/// on purpose turn it down or off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Orphans {
    /// A warning (the default).
    #[default]
    Warning,
    /// Information: reported, never a warning.
    Info,
    /// Not reported.
    Off,
}

impl Orphans {
    /// Every value, as the file spells it.
    pub const ALL: [Orphans; 3] = [Orphans::Warning, Orphans::Info, Orphans::Off];

    /// As the file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Orphans::Warning => "warning",
            Orphans::Info => "info",
            Orphans::Off => "off",
        }
    }
}

/// A kind of process of an app, recognised by its command line.
#[derive(Debug, Clone)]
pub struct Role {
    /// Unique within its app, non-empty.
    pub name: String,
    /// From `match`: searched (unanchored, as written) in the command line, arguments joined
    /// by single spaces.
    pub pattern: regex::Regex,
    /// At least this many on the current release; `None` means no lower bound.
    pub min: Option<usize>,
    /// At most this many; `Some(1)` when `singleton`; `None` means no upper bound.
    pub max: Option<usize>,
    /// At most one instance across all releases.
    pub singleton: bool,
}

/// Settings given on the command line. They beat the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--grace`: replaces the file's global grace *and* every per-app grace.
    pub grace: Option<Duration>,
}

impl Config {
    /// Applies command-line settings on top of the file.
    #[must_use]
    pub fn with_overrides(mut self, overrides: &Overrides) -> Self {
        if let Some(grace) = overrides.grace {
            self.grace = Some(grace);
            for app in &mut self.apps {
                app.grace = None;
            }
        }
        self
    }

    /// The global grace period, default filled in.
    pub fn grace(&self) -> Duration {
        self.grace.unwrap_or(DEFAULT_GRACE)
    }

    /// The grace period that applies to `app`: its own, else the global one, else the default.
    pub fn grace_for(&self, app: &AppConfig) -> Duration {
        app.grace.unwrap_or_else(|| self.grace())
    }

    /// The app called `name`, if configured.
    pub fn app(&self, name: &str) -> Option<&AppConfig> {
        self.apps.iter().find(|app| app.name == name)
    }

    /// The effective configuration as YAML, every default filled in (see `render`).
    pub fn render(&self) -> String {
        render::render(self)
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be opened or read.
    #[error("{}: cannot read configuration: {source}", shown(path))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not well-formed YAML (or not UTF-8, or more than one document, or too complex).
    #[error("{}: invalid YAML: {message}", at(path, Some(*line), Some(*column)))]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// Well-formed YAML that is not a valid configuration. `key` is the path of the offending
    /// key, like `apps[0].roles[1].max` (empty for the document itself).
    #[error("{}: {}{message}", at(path, *line, *column), keyed(key))]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        key: String,
        message: String,
    },
    /// Others could change the file (or it is not a regular file): refused before reading.
    #[error("{}: refusing this configuration file: {message}", shown(path))]
    Unsafe { path: PathBuf, message: String },
    /// Larger than [`MAX_SIZE`].
    #[error(
        "{}: configuration file is {size} bytes, more than the limit of {limit} bytes; \
         is this the right file?",
        shown(path)
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
}

impl ConfigError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ConfigError::Io { path, .. }
            | ConfigError::Syntax { path, .. }
            | ConfigError::Invalid { path, .. }
            | ConfigError::Unsafe { path, .. }
            | ConfigError::TooLarge { path, .. } => path,
        }
    }

    /// The line the error points at, when it points at one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Syntax { line, .. } => Some(*line).filter(|l| *l > 0),
            ConfigError::Invalid { line, .. } => *line,
            _ => None,
        }
    }
}

/// A path for a message: lossy UTF-8, control and invisible characters escaped.
pub(crate) fn shown(path: &Path) -> String {
    clean(&path.to_string_lossy())
}

/// `text` with control characters, bidi overrides and invisible characters replaced by
/// `\u{..}` escapes (`\n`, `\t`, `\r` for the common ones), so that it cannot move the cursor,
/// reorder or hide text on a terminal. A backslash is doubled, so the escape is unambiguous.
/// Everything else, quotes included, is kept as is.
pub(crate) fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// `text` in double quotes for a message, escaped as by [`clean`] and with `"` escaped.
pub(crate) fn quote(text: &str) -> String {
    format!("\"{}\"", clean(text).replace('"', "\\\""))
}

/// Characters that must not reach a terminal raw: [`crate::escape::is_dangerous`], the one
/// list.
pub(crate) fn is_unsafe_char(c: char) -> bool {
    crate::escape::is_dangerous(c)
}

/// `FILE:LINE:COLUMN`, or less when the position is unknown.
fn at(path: &Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line.filter(|l| *l > 0), column.filter(|c| *c > 0)) {
        (Some(line), Some(column)) => format!("{}:{line}:{column}", shown(path)),
        (Some(line), None) => format!("{}:{line}", shown(path)),
        _ => shown(path),
    }
}

fn keyed(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

/// Reads, checks and validates the configuration file at `path`.
///
/// The file is opened first and its ownership and mode are taken from the open descriptor
/// (`fstat`), so what is checked is what is read. It is opened non-blocking so a FIFO planted
/// at the path cannot hang the caller; anything but a regular file is refused.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let io_err = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::options()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits() | nix::fcntl::OFlag::O_NOCTTY.bits())
        .open(path)
        .map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    check_permissions(&meta, path, nix::unistd::geteuid().as_raw())?;
    if meta.len() > MAX_SIZE {
        return Err(too_large(path, meta.len()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_SIZE {
        // It grew between fstat and read.
        return Err(too_large(path, bytes.len() as u64));
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
            let (line, column) = position_after(valid);
            return Err(ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: "the file is not valid UTF-8".to_owned(),
            });
        }
    };
    parse_str(&text, path)
}

/// Parses and validates configuration text; `path` is only used in messages and as
/// [`Config::source`]. Does not look at the file system (no permission check).
pub fn parse_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    if text.len() as u64 > MAX_SIZE {
        return Err(too_large(path, text.len() as u64));
    }
    let node = tree::parse(text).map_err(|err| syntax_error(path, &err))?;
    let mut config = build::build(&node, text, path)?;
    config.source = Some(path.to_path_buf());
    Ok(config)
}

/// Refuses a configuration file that someone other than root or the current user could
/// change: group- or world-writable, owned by another non-root user, or not a regular file.
///
/// `meta` should come from the opened file (`File::metadata`), not from the path. `euid` is the
/// effective uid of this process. Pure: reads nothing but its arguments.
pub fn check_permissions(meta: &Metadata, path: &Path, euid: u32) -> Result<(), ConfigError> {
    let unsafe_err = |message: String| ConfigError::Unsafe {
        path: path.to_path_buf(),
        message,
    };
    let file = shown(path);
    if !meta.file_type().is_file() {
        return Err(unsafe_err(
            "it is not a regular file; point --config at a regular file".to_owned(),
        ));
    }
    let mode = meta.mode() & 0o7777;
    let writable_by = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => Some("its group and by all users"),
        (true, false) => Some("its group"),
        (false, true) => Some("all users"),
        (false, false) => None,
    };
    if let Some(who) = writable_by {
        return Err(unsafe_err(format!(
            "it is writable by {who} (mode {mode:04o}), and whoever can change it decides what \
             relwatch reports; fix with: chmod go-w {file}"
        )));
    }
    let owner = meta.uid();
    if owner != 0 && owner != euid {
        return Err(unsafe_err(format!(
            "it is owned by uid {owner}, which is neither root nor the user relwatch runs as \
             (uid {euid}), and its owner decides what relwatch reports; fix with: chown root {file}"
        )));
    }
    Ok(())
}

fn too_large(path: &Path, size: u64) -> ConfigError {
    ConfigError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: MAX_SIZE,
    }
}

/// Line and column (1-based, in characters) just after `valid`.
fn position_after(valid: &[u8]) -> (usize, usize) {
    let text = String::from_utf8_lossy(valid);
    let line = text.matches('\n').count() + 1;
    let last = text.rsplit('\n').next().unwrap_or("");
    (line, last.chars().count() + 1)
}

/// A serde-saphyr error as a located [`ConfigError::Syntax`], in its user-facing wording,
/// escaped.
fn syntax_error(path: &Path, err: &serde_saphyr::Error) -> ConfigError {
    use serde_saphyr::MessageFormatter as _;
    let message = serde_saphyr::UserMessageFormatter.format_message(err.without_snippet());
    let message = clean(&message);
    let (line, column) = err
        .location()
        .map(|loc| (to_usize(loc.line()), to_usize(loc.column())))
        .unwrap_or((0, 0));
    ConfigError::Syntax {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
