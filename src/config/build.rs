//! From the located YAML tree to a checked [`Config`]: the schema and every semantic rule.
//!
//! This is the only place that knows which keys exist, what type each takes and which
//! combinations are refused, so that all refusals share one format: the position of the
//! offending node, the key path (`apps[0].roles[1].max`), what is wrong and what was expected.
//! The first problem found, in document order, is reported.

use super::tree::{source_text, Node, Value};
use super::{clean, quote, AppConfig, Config, ConfigError, Role, MAX_GRACE};
use regex::Regex;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

const TOP_KEYS: &[&str] = &["grace", "discover", "apps"];
const APP_KEYS: &[&str] = &[
    "name", "root", "releases", "grace", "ignore", "roles", "orphans", "user",
];
const ROLE_KEYS: &[&str] = &["name", "match", "singleton", "min", "max"];

const DURATION_HINT: &str = "write it like \"90s\", \"5m\" or \"1h\"";

/// Builds the configuration from the document tree. `text` is the source (for the exact
/// spelling of scalars), `path` is for messages. `Config::source` is left to the caller.
pub(super) fn build(root: &Node, text: &str, path: &Path) -> Result<Config, ConfigError> {
    Builder { text, path }.config(root)
}

struct Builder<'a> {
    text: &'a str,
    path: &'a Path,
}

/// The entries of a mapping whose keys have been checked: all known, none repeated.
struct Fields<'n> {
    /// The mapping itself (its position is used for missing keys).
    node: &'n Node,
    /// Key path of the mapping, like `apps[0]` (empty for the document).
    path: String,
    /// What the mapping is, for messages: "app", "role", "the top level".
    what: &'static str,
    entries: Vec<(String, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The value of `key`, `None` when absent or explicitly empty (`key:` / `key: ~`).
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.raw(key).filter(|v| !matches!(v.value, Value::Null))
    }

    /// The value of `key` even when it is null.
    fn raw(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(name, _, _)| name == key)
            .map(|(_, _, value)| *value)
    }
}

fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

fn line_of(node: &Node) -> usize {
    usize::try_from(node.referenced.line()).unwrap_or(usize::MAX)
}

impl Builder<'_> {
    fn invalid(&self, node: &Node, key: impl Into<String>, message: String) -> ConfigError {
        let known = |n: u64| usize::try_from(n).ok().filter(|n| *n > 0);
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: known(node.referenced.line()),
            column: known(node.referenced.column()),
            key: key.into(),
            message,
        }
    }

    /// How a scalar was written, for messages and for numbers read as strings.
    fn spelling(&self, node: &Node) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => Some(
                source_text(node, self.text)
                    .map(str::to_owned)
                    .unwrap_or_else(|| match &node.value {
                        Value::Bool(b) => b.to_string(),
                        Value::Int(i) => i.to_string(),
                        Value::Float(f) => f.to_string(),
                        _ => String::new(),
                    }),
            ),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// "found ..." part of a type error.
    fn found(&self, node: &Node) -> String {
        match (&node.value, self.spelling(node)) {
            (Value::Str(s), _) => quote(s),
            (_, Some(spelling)) => clean(&spelling),
            (other, None) => other.kind().to_owned(),
        }
    }

    /// A file whose top level is not a mapping with one of [`TOP_KEYS`] (or an empty one) is
    /// not a relwatch configuration, whatever it is: `--config /etc/shadow` as root parses as
    /// YAML, and quoting its first line would print a password hash. Refused here, and
    /// nothing of it is shown; messages quote only the content of files that are configs.
    fn looks_like_a_config(&self, root: &Node) -> Result<(), ConfigError> {
        let ours = match &root.value {
            Value::Map(map) => {
                map.is_empty()
                    || map.iter().any(|(key, _)| {
                        matches!(&key.value, Value::Str(k) if TOP_KEYS.contains(&k.as_str()))
                    })
            }
            _ => false,
        };
        if ours {
            return Ok(());
        }
        Err(self.invalid(
            root,
            String::new(),
            format!(
                "this is not a relwatch configuration: its top level is not a mapping with any of \
                 the keys {} (nothing of the file is shown, in case it is another file; is \
                 this the file you meant?)",
                TOP_KEYS.join(", ")
            ),
        ))
    }

    fn config(&self, root: &Node) -> Result<Config, ConfigError> {
        if matches!(root.value, Value::Null) {
            // An empty file (or only comments): every default.
            return Ok(Config::default());
        }
        self.looks_like_a_config(root)?;
        let top = self.fields(root, String::new(), "the top level", TOP_KEYS)?;
        let grace = top
            .get("grace")
            .map(|node| self.duration(node, "grace"))
            .transpose()?;
        let mut discover = Vec::new();
        if let Some(list) = top.get("discover") {
            for (i, item) in self.list(list, "discover")?.iter().enumerate() {
                discover.push(self.absolute_path(item, &index("discover", i))?);
            }
        }
        let mut apps: Vec<AppConfig> = Vec::new();
        let mut app_lines: HashMap<String, usize> = HashMap::new();
        if let Some(list) = top.get("apps") {
            for (i, item) in self.list(list, "apps")?.iter().enumerate() {
                let key = index("apps", i);
                let (app, name_node) = self.app(item, &key)?;
                if let Some(first) = app_lines.get(&app.name) {
                    return Err(self.invalid(
                        name_node,
                        child(&key, "name"),
                        format!(
                            "app {} is already defined at line {first}; app names must be unique",
                            quote(&app.name),
                        ),
                    ));
                }
                app_lines.insert(app.name.clone(), line_of(name_node));
                apps.push(app);
            }
        }
        Ok(Config {
            grace,
            discover,
            apps,
            source: None,
        })
    }

    /// One app; also returns its `name` node for the uniqueness check.
    fn app<'n>(&self, node: &'n Node, key: &str) -> Result<(AppConfig, &'n Node), ConfigError> {
        let fields = self.fields(node, key.to_owned(), "app", APP_KEYS)?;
        let name_node = self.required(&fields, "name")?;
        let name = self.name(name_node, &child(key, "name"))?;
        let root = self.absolute_path(self.required(&fields, "root")?, &child(key, "root"))?;
        let releases = fields
            .get("releases")
            .map(|n| self.relative_path(n, &child(key, "releases")))
            .transpose()?;
        let grace = fields
            .get("grace")
            .map(|n| self.duration(n, &child(key, "grace")))
            .transpose()?;
        let orphans = fields
            .get("orphans")
            .map(|n| self.orphans(n, &child(key, "orphans")))
            .transpose()?
            .unwrap_or_default();
        let user = fields
            .get("user")
            .map(|n| self.user(n, &child(key, "user")))
            .transpose()?;
        let mut ignore = Vec::new();
        if let Some(list) = fields.get("ignore") {
            let list_key = child(key, "ignore");
            for (i, item) in self.list(list, &list_key)?.iter().enumerate() {
                ignore.push(self.regex(item, &index(&list_key, i))?);
            }
        }
        let mut roles: Vec<Role> = Vec::new();
        let mut role_lines: HashMap<String, usize> = HashMap::new();
        if let Some(list) = fields.get("roles") {
            let list_key = child(key, "roles");
            for (i, item) in self.list(list, &list_key)?.iter().enumerate() {
                let role_key = index(&list_key, i);
                let (role, role_name_node) = self.role(item, &role_key)?;
                if let Some(first) = role_lines.get(&role.name) {
                    return Err(self.invalid(
                        role_name_node,
                        child(&role_key, "name"),
                        format!(
                            "role {} is already defined at line {first} in app {}; role names \
                             must be unique within an app",
                            quote(&role.name),
                            quote(&name)
                        ),
                    ));
                }
                role_lines.insert(role.name.clone(), line_of(role_name_node));
                roles.push(role);
            }
        }
        let app = AppConfig {
            name,
            root,
            releases,
            grace,
            ignore,
            roles,
            orphans,
            user,
        };
        Ok((app, name_node))
    }

    /// One role; also returns its `name` node for the uniqueness check.
    fn role<'n>(&self, node: &'n Node, key: &str) -> Result<(Role, &'n Node), ConfigError> {
        let fields = self.fields(node, key.to_owned(), "role", ROLE_KEYS)?;
        let name_node = self.required(&fields, "name")?;
        let name = self.name(name_node, &child(key, "name"))?;
        let pattern = self.regex(self.required(&fields, "match")?, &child(key, "match"))?;
        let singleton = fields
            .get("singleton")
            .map(|n| self.boolean(n, &child(key, "singleton")))
            .transpose()?
            .unwrap_or(false);
        let min_node = fields.get("min");
        let max_node = fields.get("max");
        let min = min_node
            .map(|n| self.count(n, &child(key, "min")))
            .transpose()?;
        let max = max_node
            .map(|n| self.count(n, &child(key, "max")))
            .transpose()?;
        if let (Some(node), Some(max)) = (max_node, max) {
            if max == 0 {
                return Err(self.invalid(
                    node,
                    child(key, "max"),
                    "must be 1 or more (leave max out for no upper limit)".to_owned(),
                ));
            }
            if singleton && max > 1 {
                return Err(self.invalid(
                    node,
                    child(key, "max"),
                    format!(
                        "is {max}, but `singleton: true` allows one instance; remove max or set \
                         singleton: false"
                    ),
                ));
            }
        }
        let max = if singleton { Some(1) } else { max };
        if let (Some(node), Some(min), Some(max)) = (min_node, min, max) {
            if min > max {
                let message = if singleton && max_node.is_none() {
                    format!("is {min}, more than the one instance `singleton: true` allows")
                } else {
                    format!("is {min}, more than max ({max})")
                };
                return Err(self.invalid(node, child(key, "min"), message));
            }
        }
        let role = Role {
            name,
            pattern,
            min,
            max,
            singleton,
        };
        Ok((role, name_node))
    }

    /// Checks that `node` is a mapping whose keys are all in `allowed` and none repeated.
    fn fields<'n>(
        &self,
        node: &'n Node,
        path: String,
        what: &'static str,
        allowed: &[&str],
    ) -> Result<Fields<'n>, ConfigError> {
        let expected = allowed.join(", ");
        let Value::Map(map) = &node.value else {
            return Err(self.invalid(
                node,
                path,
                format!(
                    "expected a mapping ({what}, with keys: {expected}), found {}",
                    self.found(node)
                ),
            ));
        };
        let mut entries: Vec<(String, &'n Node, &'n Node)> = Vec::with_capacity(map.len());
        for (key_node, value) in map {
            let Some(name) = self.spelling(key_node) else {
                return Err(self.invalid(
                    key_node,
                    path,
                    format!(
                        "expected a key name in {what} (one of: {expected}), found {}",
                        key_node.value.kind()
                    ),
                ));
            };
            let key_path = child(&path, &clean(&name));
            if !allowed.contains(&name.as_str()) {
                return Err(self.invalid(
                    key_node,
                    key_path,
                    format!(
                        "unknown key `{}` in {what} (expected one of: {expected})",
                        clean(&name)
                    ),
                ));
            }
            if let Some((_, first, _)) = entries.iter().find(|(n, _, _)| *n == name) {
                return Err(self.invalid(
                    key_node,
                    key_path,
                    format!(
                        "duplicate key `{name}` in {what} (first at line {}); each key may \
                         appear once",
                        line_of(first)
                    ),
                ));
            }
            entries.push((name, key_node, value));
        }
        Ok(Fields {
            node,
            path,
            what,
            entries,
        })
    }

    fn required<'n>(&self, fields: &Fields<'n>, key: &str) -> Result<&'n Node, ConfigError> {
        fields.raw(key).ok_or_else(|| {
            self.invalid(
                fields.node,
                child(&fields.path, key),
                format!("missing key `{key}` in {}", fields.what),
            )
        })
    }

    fn list<'n>(&self, node: &'n Node, key: &str) -> Result<&'n [Node], ConfigError> {
        match &node.value {
            Value::Seq(items) => Ok(items),
            _ => Err(self.invalid(
                node,
                key,
                format!("expected a list, found {}", self.found(node)),
            )),
        }
    }

    fn string(&self, node: &Node, key: &str) -> Result<String, ConfigError> {
        self.spelling(node).ok_or_else(|| {
            self.invalid(
                node,
                key,
                format!("expected a string, found {}", self.found(node)),
            )
        })
    }

    /// An app or role name: non-empty, printable.
    fn name(&self, node: &Node, key: &str) -> Result<String, ConfigError> {
        let name = self.string(node, key)?;
        if name.trim().is_empty() {
            return Err(self.invalid(node, key, "must not be empty".to_owned()));
        }
        if name.chars().any(super::is_unsafe_char) {
            return Err(self.invalid(
                node,
                key,
                format!(
                    "{} contains control or invisible characters; names appear in reports",
                    quote(&name)
                ),
            ));
        }
        Ok(name)
    }

    /// `user:`: a user name on this host, or a uid.
    fn user(&self, node: &Node, key: &str) -> Result<u32, ConfigError> {
        if let Value::Int(n) = node.value {
            return u32::try_from(n).map_err(|_| {
                self.invalid(
                    node,
                    key,
                    format!(
                        "expected a uid from 0 to 4294967295, found {}",
                        self.found(node)
                    ),
                )
            });
        }
        let name = self.name(node, key)?;
        match nix::unistd::User::from_name(&name) {
            Ok(Some(user)) => Ok(user.uid.as_raw()),
            Ok(None) => Err(self.invalid(
                node,
                key,
                format!(
                    "no user {} on this host (name an existing user, or give the uid as a number)",
                    quote(&name)
                ),
            )),
            Err(e) => Err(self.invalid(
                node,
                key,
                format!("cannot look up user {}: {e}", quote(&name)),
            )),
        }
    }

    /// `warning`, `info` or `off`.
    fn orphans(&self, node: &Node, key: &str) -> Result<super::Orphans, ConfigError> {
        let text = self.string(node, key)?;
        super::Orphans::ALL
            .into_iter()
            .find(|o| o.as_str() == text)
            .ok_or_else(|| {
                self.invalid(
                    node,
                    key,
                    format!("expected warning, info or off, found {}", self.found(node)),
                )
            })
    }

    fn boolean(&self, node: &Node, key: &str) -> Result<bool, ConfigError> {
        match node.value {
            Value::Bool(b) => Ok(b),
            _ => Err(self.invalid(
                node,
                key,
                format!("expected true or false, found {}", self.found(node)),
            )),
        }
    }

    /// A whole number of instances, 0 or more.
    fn count(&self, node: &Node, key: &str) -> Result<usize, ConfigError> {
        let n = match node.value {
            Value::Int(n) => n,
            _ => {
                return Err(self.invalid(
                    node,
                    key,
                    format!("expected a whole number, found {}", self.found(node)),
                ))
            }
        };
        usize::try_from(n).map_err(|_| {
            let problem = if n < 0 { "negative" } else { "too large" };
            self.invalid(
                node,
                key,
                format!(
                    "expected a whole number of 0 or more, found {} ({problem})",
                    self.found(node)
                ),
            )
        })
    }

    fn duration(&self, node: &Node, key: &str) -> Result<Duration, ConfigError> {
        let text = self.spelling(node).ok_or_else(|| {
            self.invalid(
                node,
                key,
                format!(
                    "expected a duration, found {}; {DURATION_HINT}",
                    self.found(node)
                ),
            )
        })?;
        let duration = humantime::parse_duration(text.trim()).map_err(|err| {
            self.invalid(
                node,
                key,
                format!(
                    "invalid duration {}: {}; {DURATION_HINT}",
                    quote(&text),
                    clean(&err.to_string())
                ),
            )
        })?;
        if duration > MAX_GRACE {
            return Err(self.invalid(
                node,
                key,
                format!(
                    "duration {} is longer than the limit of {}",
                    quote(&text),
                    humantime::format_duration(MAX_GRACE)
                ),
            ));
        }
        Ok(duration)
    }

    fn regex(&self, node: &Node, key: &str) -> Result<Regex, ConfigError> {
        let pattern = self.string(node, key)?;
        if pattern.is_empty() {
            return Err(self.invalid(
                node,
                key,
                "empty regex: it would match every command line".to_owned(),
            ));
        }
        Regex::new(&pattern).map_err(|err| {
            self.invalid(
                node,
                key,
                format!(
                    "invalid regex {}: {}",
                    quote(&pattern),
                    clean(&regex_reason(&err))
                ),
            )
        })
    }

    fn path_text(&self, node: &Node, key: &str) -> Result<String, ConfigError> {
        let text = self.string(node, key)?;
        if text.is_empty() {
            return Err(self.invalid(node, key, "must not be empty".to_owned()));
        }
        if text.contains('\0') {
            return Err(self.invalid(
                node,
                key,
                format!("{} contains a NUL character", quote(&text)),
            ));
        }
        Ok(text)
    }

    fn absolute_path(&self, node: &Node, key: &str) -> Result<PathBuf, ConfigError> {
        let text = self.path_text(node, key)?;
        let path = PathBuf::from(&text);
        if !path.is_absolute() {
            return Err(self.invalid(
                node,
                key,
                format!("must be an absolute path, found {}", quote(&text)),
            ));
        }
        Ok(path)
    }

    /// `releases`: inside the app root, so relative and without `..`.
    fn relative_path(&self, node: &Node, key: &str) -> Result<PathBuf, ConfigError> {
        let text = self.path_text(node, key)?;
        let path = PathBuf::from(&text);
        if path.is_absolute() {
            return Err(self.invalid(
                node,
                key,
                format!(
                    "must be relative to the app root, found the absolute path {}",
                    quote(&text)
                ),
            ));
        }
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(self.invalid(
                node,
                key,
                format!(
                    "must stay inside the app root, but {} contains `..`",
                    quote(&text)
                ),
            ));
        }
        Ok(path)
    }
}

/// The one-line reason from a regex error (the crate's syntax errors span several lines:
/// the pattern, a caret line, then `error: ...`).
fn regex_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    text.lines()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| text.lines().map(str::trim).collect::<Vec<_>>().join(" "))
}
