//! Settings: command-line arguments, the config file and built-in defaults merged once, by
//! [`plan`], into the deploy roots to check and each one's [`AppSettings`]. Precedence: flags,
//! then the file (the app's own value, then the file's global one), then defaults. Every stage
//! after this (placement, rules, renderers) trusts the plan and never sees argv or the file.

use crate::config::{self, Config};
use crate::escape::escape;
use crate::layout::discover::{discover, DEFAULT_PLACES};
use crate::layout::DeployRoot;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An error that is the caller's fault (bad argument or config): exit 3 with its message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// What one app expects, merged from flags, config file and defaults.
#[derive(Debug, Clone)]
pub struct AppSettings {
    pub grace: Duration,
    /// Processes whose command line matches are left out of the app.
    pub ignore: Vec<regex::Regex>,
    pub roles: Vec<crate::config::Role>,
    /// What an `orphan` finding is worth (`orphans:` in the config).
    pub orphans: crate::config::Orphans,
    /// A uid the app runs as besides the releases' owner and root (`user:` in the config).
    pub user: Option<u32>,
}

impl AppSettings {
    /// Zero-config: only a grace period.
    pub fn with_grace(grace: Duration) -> Self {
        AppSettings {
            grace,
            ignore: Vec::new(),
            roles: Vec::new(),
            orphans: Default::default(),
            user: None,
        }
    }
}

/// Settings the rules need, already validated: one entry per deploy root, same order.
#[derive(Debug, Clone)]
pub struct Settings {
    pub apps: Vec<AppSettings>,
}

impl Settings {
    pub fn grace(&self, app: usize) -> Duration {
        self.apps.get(app).map(|a| a.grace).unwrap_or_default()
    }
}

pub struct Plan {
    pub roots: Vec<DeployRoot>,
    pub settings: Settings,
    /// Set when discovery ran: the places searched.
    pub searched: Option<Vec<PathBuf>>,
}

/// Read `--config FILE`, or the default file when it exists; zero-config otherwise. Any
/// refusal is a usage error (exit 3) that names the file and line.
pub fn load_config(arg: Option<&Path>) -> Result<Config, UsageError> {
    let path = match arg {
        Some(p) => p,
        None if Path::new(config::DEFAULT_PATH).exists() => Path::new(config::DEFAULT_PATH),
        None => return Ok(Config::default()),
    };
    config::load(path).map_err(|e| UsageError(e.to_string()))
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// Where discovery looks: `--discover`, else the config file's `discover:`, else the defaults.
fn discovery_places(discover_args: &[PathBuf], cfg: &Config) -> Vec<PathBuf> {
    if !discover_args.is_empty() {
        discover_args.to_vec()
    } else if !cfg.discover.is_empty() {
        cfg.discover.clone()
    } else {
        DEFAULT_PLACES.iter().map(PathBuf::from).collect()
    }
}

/// Places someone named (`--discover`, or the config's `discover:`) must be directories (for
/// `DIR/*`, DIR): a typo would otherwise find nothing, and nothing found is OK. The defaults
/// are not checked (a host need not have `/data`).
fn named_places_exist(discover_args: &[PathBuf], cfg: &Config) -> Result<(), UsageError> {
    let (places, whence) = if !discover_args.is_empty() {
        (discover_args, "--discover".to_owned())
    } else {
        let source = cfg.source.as_deref().map(escape);
        let whence = format!("{}: discover:", source.unwrap_or_else(|| "config".into()));
        (&cfg.discover[..], whence)
    };
    for place in places {
        let dir = match place.file_name() {
            Some(n) if n == "*" => place.parent().unwrap_or(place),
            _ => place,
        };
        if !dir.is_dir() {
            return Err(UsageError(format!(
                "{whence} {}: no such directory (give a directory that holds deploy roots, or \
                 DIR/* for each directory in DIR)",
                escape(place)
            )));
        }
    }
    Ok(())
}

/// The deploy roots found under `places`; one that cannot be loaded is skipped, and said so.
fn discover_roots(places: &[PathBuf]) -> Vec<DeployRoot> {
    discover(places)
        .into_iter()
        .filter_map(|path| match DeployRoot::load(&path) {
            Ok(r) => Some(r),
            Err(e) => {
                say!("relwatch: skipping discovered {}: {e}", escape(&path));
                None
            }
        })
        .collect()
}

/// Merge arguments, config and defaults.
pub fn plan(
    named: &[PathBuf],
    discover_args: &[PathBuf],
    config_arg: Option<&Path>,
    grace_flag: Option<Duration>,
) -> anyhow::Result<Plan> {
    let cfg = load_config(config_arg)?;
    let settings_for = |app: Option<&config::AppConfig>| AppSettings {
        grace: grace_flag
            .or(app.and_then(|a| a.grace))
            .or(cfg.grace)
            .unwrap_or(config::DEFAULT_GRACE),
        ignore: app.map(|a| a.ignore.clone()).unwrap_or_default(),
        roles: app.map(|a| a.roles.clone()).unwrap_or_default(),
        orphans: app.map(|a| a.orphans).unwrap_or_default(),
        user: app.and_then(|a| a.user),
    };
    let mut roots = Vec::new();
    let mut apps = Vec::new();
    let mut searched = None;
    if !named.is_empty() {
        for path in named {
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            let app = cfg.apps.iter().find(|a| same_path(&a.root, &abs));
            let mut root = DeployRoot::load_with(path, app.and_then(|a| a.releases.as_deref()))
                .map_err(|e| UsageError(e.to_string()))?;
            if let Some(a) = app {
                root.name.clone_from(&a.name);
            }
            roots.push(root);
            apps.push(settings_for(app));
        }
    } else if !cfg.apps.is_empty() {
        for app in &cfg.apps {
            let mut root =
                DeployRoot::load_with(&app.root, app.releases.as_deref()).map_err(|e| {
                    UsageError(format!(
                        "{}: app {}: {e}",
                        cfg.source
                            .as_deref()
                            .map(escape)
                            .unwrap_or_else(|| "config".into()),
                        escape(&app.name)
                    ))
                })?;
            root.name.clone_from(&app.name);
            roots.push(root);
            apps.push(settings_for(Some(app)));
        }
    } else {
        named_places_exist(discover_args, &cfg)?;
        let places = discovery_places(discover_args, &cfg);
        for root in discover_roots(&places) {
            roots.push(root);
            apps.push(settings_for(None));
        }
        searched = Some(places);
    }
    // The same root named twice (or through two spellings) is checked once.
    let mut seen = std::collections::HashSet::new();
    let (roots, apps): (Vec<DeployRoot>, Vec<AppSettings>) = roots
        .into_iter()
        .zip(apps)
        .filter(|(r, _)| seen.insert(r.link.clone()))
        .unzip();
    Ok(Plan {
        roots,
        settings: Settings { apps },
        searched,
    })
}
