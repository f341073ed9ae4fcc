//! Tests for the configuration module: one per refusal (each checks the line and the key the
//! message names), the defaults, the example, rendering, and the file-level checks.

use super::*;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;

const FILE: &str = "/etc/relwatch/config.yaml";

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_str(text, Path::new(FILE))
}

/// The refusal for `text`, which must be `Invalid`: (line, key, rendered message).
fn refused(text: &str) -> (Option<usize>, String, String) {
    match parse(text) {
        Err(err @ ConfigError::Invalid { .. }) => {
            let shown = err.to_string();
            let ConfigError::Invalid { line, key, .. } = err else {
                unreachable!()
            };
            (line, key, shown)
        }
        Err(other) => panic!("expected Invalid for {text:?}, got {other:?}"),
        Ok(config) => panic!("expected a refusal for {text:?}, got {config:?}"),
    }
}

/// Asserts the refusal points at `line`, names `key`, and says `words`.
#[track_caller]
fn assert_refused(text: &str, line: usize, key: &str, words: &[&str]) {
    let (got_line, got_key, shown) = refused(text);
    assert_eq!(got_line, Some(line), "line in {shown}");
    assert_eq!(got_key, key, "key in {shown}");
    assert!(
        shown.starts_with(&format!("{FILE}:{line}:")),
        "position prefix in {shown}"
    );
    assert!(shown.contains(key), "key path in {shown}");
    for w in words {
        assert!(shown.contains(w), "{w:?} in {shown}");
    }
}

const MINIMAL: &str = "apps:\n  - name: shop\n    root: /srv/shop\n";

// ----- happy paths -----------------------------------------------------------------------

#[test]
fn minimal_app_gets_every_default() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.grace, None);
    assert_eq!(config.grace(), DEFAULT_GRACE);
    assert_eq!(DEFAULT_GRACE, Duration::from_secs(300));
    assert!(config.discover.is_empty());
    assert_eq!(config.source.as_deref(), Some(Path::new(FILE)));
    assert_eq!(config.apps.len(), 1);
    let app = &config.apps[0];
    assert_eq!(app.name, "shop");
    assert_eq!(app.root, Path::new("/srv/shop"));
    assert_eq!(app.releases, None);
    assert_eq!(app.grace, None);
    assert_eq!(config.grace_for(app), DEFAULT_GRACE);
    assert!(app.ignore.is_empty());
    assert!(app.roles.is_empty());

    let rendered = config.render();
    assert!(rendered.contains("\ngrace: 5m\n"), "{rendered}");
    assert!(rendered.contains("    grace: 5m\n"), "{rendered}");
    assert!(rendered.contains("discover: []\n"), "{rendered}");
    assert!(rendered.contains("# releases: not set"), "{rendered}");
    assert!(
        rendered.contains("# from: /etc/relwatch/config.yaml"),
        "{rendered}"
    );
    assert_eq!(config.to_string(), rendered);
}

#[test]
fn empty_or_comment_only_file_is_all_defaults() {
    for text in ["", "# nothing yet\n", "---\n"] {
        let config = parse(text).unwrap();
        assert_eq!(config.grace(), DEFAULT_GRACE);
        assert!(config.apps.is_empty() && config.discover.is_empty());
        assert_eq!(config.source.as_deref(), Some(Path::new(FILE)));
    }
    let defaults = Config::default();
    assert!(defaults.render().contains("built-in defaults"));
    assert!(defaults.render().contains("apps: []"));
}

#[test]
fn role_defaults_and_singleton_sets_max() {
    let config = parse(
        "apps:\n  - name: a\n    root: /srv/a\n    roles:\n      - name: beat\n        \
         match: celery .*beat\n        singleton: true\n      - name: web\n        \
         match: gunicorn\n",
    )
    .unwrap();
    let roles = &config.apps[0].roles;
    assert!(roles[0].singleton);
    assert_eq!(roles[0].max, Some(1));
    assert_eq!(roles[0].min, None);
    assert!(!roles[1].singleton);
    assert_eq!((roles[1].min, roles[1].max), (None, None));
    // Compiled as given: unanchored search over the joined command line.
    assert!(roles[0]
        .pattern
        .is_match("/usr/bin/python3 -m celery -A proj beat"));
}

#[test]
fn example_file_is_the_example_text() {
    assert_eq!(
        example(),
        include_str!("../../packaging/relwatch.example.yaml")
    );
}

#[test]
fn example_parses_to_the_structure_it_describes() {
    let config = parse(example()).unwrap();
    assert_eq!(config.grace, Some(Duration::from_secs(300)));
    assert_eq!(
        config.discover,
        vec![PathBuf::from("/var/www"), PathBuf::from("/srv")]
    );
    assert_eq!(config.apps.len(), 1);
    let app = &config.apps[0];
    assert_eq!(app.name, "shop");
    assert_eq!(app.root, Path::new("/srv/shop"));
    assert_eq!(app.releases.as_deref(), Some(Path::new("releases")));
    assert_eq!(app.grace, Some(Duration::from_secs(120)));
    assert_eq!(config.grace_for(app), Duration::from_secs(120));
    assert_eq!(app.ignore.len(), 1);
    assert_eq!(app.ignore[0].as_str(), "^/usr/sbin/sshd");
    assert_eq!(app.roles.len(), 2);
    let scheduler = &app.roles[0];
    assert_eq!(scheduler.name, "scheduler");
    assert_eq!(scheduler.pattern.as_str(), "celery .*beat");
    assert!(scheduler.singleton);
    assert_eq!((scheduler.min, scheduler.max), (None, Some(1)));
    let queue = &app.roles[1];
    assert_eq!(queue.name, "queue");
    assert_eq!(queue.pattern.as_str(), "artisan queue:work");
    assert!(!queue.singleton);
    assert_eq!((queue.min, queue.max), (Some(2), Some(8)));
}

#[test]
fn render_is_a_valid_configuration_that_renders_the_same() {
    let config = parse(example()).unwrap();
    let rendered = config.render();
    assert!(rendered.contains("grace: 2m"), "{rendered}");
    assert!(rendered.contains("match: \"celery .*beat\""), "{rendered}");
    assert!(rendered.contains("max: 8"), "{rendered}");
    let again = parse(&rendered).unwrap();
    assert_eq!(again.render(), rendered);
}

#[test]
fn render_escapes_control_and_invisible_characters_and_round_trips() {
    let config = parse(
        "apps:\n  - name: \"sh\\u202Eop\"\n    root: \"/srv/a\\\"b\\\\c\"\n    roles:\n      \
         - name: r\n        match: \"\\e\\\\[\"\n",
    );
    // Names with invisible characters are refused...
    let err = config.unwrap_err().to_string();
    assert!(
        err.contains("\\u{202e}") && !err.contains('\u{202e}'),
        "{err}"
    );
    // ...but regexes and paths may hold anything; the rendering stays printable.
    let config = parse(
        "apps:\n  - name: shop\n    root: \"/srv/a\\\"b\\\\c\"\n    roles:\n      \
         - name: r\n        match: \"\\e\\\\[\\u202E\"\n",
    )
    .unwrap();
    let rendered = config.render();
    assert!(
        !rendered.chars().any(|c| c == '\u{1b}' || c == '\u{202e}'),
        "{rendered:?}"
    );
    let again = parse(&rendered).unwrap();
    assert_eq!(again.apps[0].root, Path::new("/srv/a\"b\\c"));
    assert_eq!(again.apps[0].roles[0].pattern.as_str(), "\u{1b}\\[\u{202e}");
    assert_eq!(again.render(), rendered);
}

#[test]
fn command_line_overrides_file_and_file_overrides_defaults() {
    let config = parse(example()).unwrap();
    let app_grace = config.grace_for(&config.apps[0]);
    assert_eq!(app_grace, Duration::from_secs(120));
    let same = config.clone().with_overrides(&Overrides::default());
    assert_eq!(same.grace_for(&same.apps[0]), app_grace);
    let overridden = config.with_overrides(&Overrides {
        grace: Some(Duration::from_secs(30)),
    });
    assert_eq!(overridden.grace(), Duration::from_secs(30));
    assert_eq!(
        overridden.grace_for(&overridden.apps[0]),
        Duration::from_secs(30)
    );
    assert!(overridden.render().contains("    grace: 30s\n"));
    assert!(overridden.app("shop").is_some() && overridden.app("nope").is_none());
}

#[test]
fn anchors_and_merge_keys_work() {
    let config = parse(
        "apps:\n  - &base\n    name: a\n    root: /srv/a\n    grace: 1m\n  - <<: *base\n    \
         name: b\n",
    )
    .unwrap();
    assert_eq!(config.apps[1].name, "b");
    assert_eq!(config.apps[1].root, Path::new("/srv/a"));
    assert_eq!(config.apps[1].grace, Some(Duration::from_secs(60)));
}

#[test]
fn scalars_keep_their_spelling_as_strings() {
    let config = parse(
        "apps:\n  - name: 0755\n    root: /srv/a\n    roles:\n      - name: 2024\n        \
         match: 1.50\n",
    )
    .unwrap();
    assert_eq!(config.apps[0].name, "0755");
    assert_eq!(config.apps[0].roles[0].name, "2024");
    assert_eq!(config.apps[0].roles[0].pattern.as_str(), "1.50");
}

#[test]
fn durations_in_several_spellings() {
    for (text, secs) in [
        ("90s", 90),
        ("5m", 300),
        ("1h", 3600),
        ("1h 30m", 5400),
        ("0s", 0),
    ] {
        let config = parse(&format!("grace: {text}\n")).unwrap();
        assert_eq!(config.grace, Some(Duration::from_secs(secs)), "{text}");
    }
}

// ----- refusals: keys and types ------------------------------------------------------------

#[test]
fn unknown_key_in_app_reads_like_the_spec() {
    let text = "grace: 5m\napps:\n  - name: shop\n    naem: x\n    root: /srv/shop\n";
    let (line, key, shown) = refused(text);
    assert_eq!(line, Some(4));
    assert_eq!(key, "apps[0].naem");
    assert_eq!(
        shown,
        "/etc/relwatch/config.yaml:4:5: apps[0].naem: unknown key `naem` in app \
         (expected one of: name, root, releases, grace, ignore, roles, orphans, user)"
    );
}

#[test]
fn unknown_key_at_top_level_and_in_role() {
    assert_refused(
        "grace: 5m\ngrase: 1m\n",
        2,
        "grase",
        &[
            "unknown key `grase`",
            "the top level",
            "grace, discover, apps",
        ],
    );
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    roles:\n      - name: r\n        \
         pattern: x\n",
        6,
        "apps[0].roles[0].pattern",
        &[
            "unknown key `pattern` in role",
            "name, match, singleton, min, max",
        ],
    );
}

#[test]
fn unknown_key_with_control_characters_is_escaped() {
    let (_, key, shown) = refused("apps: []\n\"na\\e[2Jme\": x\n");
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    assert!(!key.contains('\u{1b}'), "{key:?}");
    assert!(shown.contains("na\\u{1b}[2Jme"), "{shown}");
}

#[test]
fn duplicate_key_is_refused_with_both_lines() {
    assert_refused(
        "apps:\n  - name: shop\n    root: /srv/shop\n    grace: 1m\n    grace: 2m\n",
        5,
        "apps[0].grace",
        &["duplicate key `grace` in app", "first at line 4"],
    );
    assert_refused(
        "grace: 1m\napps: []\ngrace: 2m\n",
        3,
        "grace",
        &["duplicate key `grace`", "first at line 1"],
    );
}

#[test]
fn wrong_type_for_min_is_refused() {
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    roles:\n      - name: r\n        match: x\n        \
         min: two\n",
        7,
        "apps[0].roles[0].min",
        &["expected a whole number", "\"two\""],
    );
}

#[test]
fn other_wrong_types_are_refused() {
    let role = |line: &str| {
        format!("apps:\n  - name: a\n    root: /srv/a\n    roles:\n      - name: r\n        match: x\n        {line}\n")
    };
    assert_refused(
        &role("singleton: yes"),
        7,
        "apps[0].roles[0].singleton",
        &["expected true or false", "\"yes\""],
    );
    assert_refused(
        &role("max: -1"),
        7,
        "apps[0].roles[0].max",
        &["0 or more", "-1"],
    );
    assert_refused(
        &role("max: 1.5"),
        7,
        "apps[0].roles[0].max",
        &["whole number", "1.5"],
    );
    assert_refused("apps: shop\n", 1, "apps", &["expected a list", "\"shop\""]);
    assert_refused(
        "apps:\n  - shop\n",
        2,
        "apps[0]",
        &["expected a mapping (app", "\"shop\""],
    );
    assert_refused(
        "apps:\n  - name: [a, b]\n    root: /srv/a\n",
        2,
        "apps[0].name",
        &["expected a string, found a list"],
    );
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    ignore: \"^sshd\"\n",
        4,
        "apps[0].ignore",
        &["expected a list"],
    );
    assert_refused(
        "- a\n- b\n",
        1,
        "",
        &["not a relwatch configuration", "grace, discover, apps"],
    );
}

/// Regression: `--config /etc/shadow` as root parsed as YAML, and the error quoted its first
/// line (a password hash) as an unknown key. A file whose top level has none of the keys is
/// not a configuration: refused, and nothing of it is shown.
#[test]
fn a_file_that_is_not_a_config_is_refused_without_quoting_it() {
    let secret = "$y$j9T$SECRETSALT$SECREThash";
    for text in [
        format!("root:{secret}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"),
        format!("{secret}\n"),
        format!("\"{secret}\": 1\nother: 2\n"),
        format!("- {secret}\n"),
        format!("[{secret}]\n"),
    ] {
        let (_, key, shown) = refused(&text);
        assert!(!shown.contains("SECRET") && key.is_empty(), "{shown}");
        assert!(shown.contains("not a relwatch configuration"), "{shown}");
    }
    // An empty mapping is a configuration with every default, as an empty file is.
    assert!(parse("{}\n").is_ok());
    // One known key makes it a configuration: its own mistakes are quoted, to be fixed.
    let (_, _, shown) = refused("grace: 1m\ngarce: 2m\n");
    assert!(shown.contains("unknown key `garce`"), "{shown}");
}

#[test]
fn missing_required_keys_are_refused() {
    assert_refused(
        "apps:\n  - name: shop\n",
        2,
        "apps[0].root",
        &["missing key `root` in app"],
    );
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    roles:\n      - name: r\n",
        5,
        "apps[0].roles[0].match",
        &["missing key `match` in role"],
    );
    assert_refused(
        "apps:\n  - name: a\n    root:\n",
        3,
        "apps[0].root",
        &["expected a string, found nothing"],
    );
}

// ----- refusals: values ----------------------------------------------------------------------

#[test]
fn bad_regex_is_refused_naming_the_regex() {
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    roles:\n      - name: r\n        \
         match: \"celery (beat\"\n",
        6,
        "apps[0].roles[0].match",
        &["invalid regex \"celery (beat\"", "unclosed group"],
    );
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    ignore:\n      - ok\n      - \"[z-a]\"\n",
        6,
        "apps[0].ignore[1]",
        &["invalid regex \"[z-a]\"", "start must be <= the end"],
    );
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    ignore: [\"\"]\n",
        4,
        "apps[0].ignore[0]",
        &["empty regex"],
    );
}

#[test]
fn bad_duration_is_refused_with_examples() {
    assert_refused(
        "grace: soon\n",
        1,
        "grace",
        &["invalid duration \"soon\"", "\"90s\", \"5m\" or \"1h\""],
    );
    assert_refused(
        "grace: 300\n",
        1,
        "grace",
        &["invalid duration \"300\"", "time unit needed"],
    );
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    grace: 2 fortnights\n",
        4,
        "apps[0].grace",
        &["invalid duration \"2 fortnights\"", "\"5m\""],
    );
    assert_refused("grace: 400d\n", 1, "grace", &["longer than the limit"]);
}

#[test]
fn singleton_with_max_above_one_is_refused() {
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    roles:\n      - name: beat\n        match: beat\n        \
         singleton: true\n        max: 3\n",
        8,
        "apps[0].roles[0].max",
        &["is 3", "singleton: true"],
    );
    // max: 1 says the same thing as singleton and is accepted.
    let ok = parse(
        "apps:\n  - name: a\n    root: /srv/a\n    roles:\n      - name: beat\n        match: beat\n        \
         singleton: true\n        max: 1\n",
    )
    .unwrap();
    assert_eq!(ok.apps[0].roles[0].max, Some(1));
}

#[test]
fn min_above_max_is_refused() {
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    roles:\n      - name: q\n        match: q\n        \
         min: 5\n        max: 2\n",
        7,
        "apps[0].roles[0].min",
        &["is 5", "max (2)"],
    );
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    roles:\n      - name: q\n        match: q\n        \
         singleton: true\n        min: 2\n",
        8,
        "apps[0].roles[0].min",
        &["is 2", "singleton"],
    );
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    roles:\n      - name: q\n        match: q\n        \
         max: 0\n",
        7,
        "apps[0].roles[0].max",
        &["1 or more"],
    );
}

#[test]
fn duplicate_app_name_is_refused() {
    assert_refused(
        "apps:\n  - name: shop\n    root: /srv/shop\n  - name: shop\n    root: /srv/shop2\n",
        4,
        "apps[1].name",
        &["app \"shop\" is already defined at line 2"],
    );
}

#[test]
fn duplicate_role_name_is_refused() {
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    roles:\n      - name: q\n        match: x\n      \
         - name: q\n        match: y\n",
        7,
        "apps[0].roles[1].name",
        &["role \"q\" is already defined at line 5", "app \"a\""],
    );
}

#[test]
fn empty_names_are_refused() {
    assert_refused(
        "apps:\n  - name: \"\"\n    root: /srv/a\n",
        2,
        "apps[0].name",
        &["must not be empty"],
    );
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    roles:\n      - name: \" \"\n        match: x\n",
        5,
        "apps[0].roles[0].name",
        &["must not be empty"],
    );
}

#[test]
fn relative_root_is_refused() {
    assert_refused(
        "apps:\n  - name: a\n    root: srv/a\n",
        3,
        "apps[0].root",
        &["must be an absolute path", "\"srv/a\""],
    );
    assert_refused(
        "discover: [/srv, www]\n",
        1,
        "discover[1]",
        &["must be an absolute path", "\"www\""],
    );
}

#[test]
fn bad_releases_paths_are_refused() {
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    releases: /srv/a/releases\n",
        4,
        "apps[0].releases",
        &["relative to the app root", "\"/srv/a/releases\""],
    );
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    releases: ../other/releases\n",
        4,
        "apps[0].releases",
        &["contains `..`"],
    );
    assert_refused(
        "apps:\n  - name: a\n    root: /srv/a\n    releases: \"\"\n",
        4,
        "apps[0].releases",
        &["must not be empty"],
    );
}

// ----- refusals: syntax and size -------------------------------------------------------------

#[test]
fn yaml_syntax_errors_are_located() {
    let err = parse("grace: 5m\napps: [\n").unwrap_err();
    let ConfigError::Syntax { line, column, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(*line >= 2 && *column >= 1, "{err}");
    assert!(err.to_string().starts_with(FILE), "{err}");
    assert!(err.to_string().contains("invalid YAML"), "{err}");
    assert_eq!(err.line(), Some(*line));

    let err = parse("grace: 5m\n---\ngrace: 1m\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::Syntax { line: 3, .. }),
        "{err:?}"
    );

    let err = parse("grace: !custom 5m\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::Syntax { line: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn too_large_text_is_refused() {
    let text = format!("# {}\n", "x".repeat(MAX_SIZE as usize));
    let err = parse(&text).unwrap_err();
    assert!(
        matches!(err, ConfigError::TooLarge { size, limit: MAX_SIZE, .. } if size > MAX_SIZE),
        "{err:?}"
    );
    assert!(err.to_string().contains("1048576"), "{err}");
}

// ----- the file: permissions, size, encoding ----------------------------------------------

/// A config file in a fresh directory with `mode`.
fn config_file(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    let mut file = fs::File::create(&path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    (dir, path)
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn unsafe_message(path: &Path, euid: u32) -> String {
    let meta = fs::File::open(path).unwrap().metadata().unwrap();
    match check_permissions(&meta, path, euid) {
        Err(err @ ConfigError::Unsafe { .. }) => err.to_string(),
        other => panic!("expected Unsafe, got {other:?}"),
    }
}

#[test]
fn safe_file_passes_and_loads() {
    let (_dir, path) = config_file(example(), 0o644);
    let meta = fs::metadata(&path).unwrap();
    check_permissions(&meta, &path, euid()).unwrap();
    let config = load(&path).unwrap();
    assert_eq!(config.source.as_deref(), Some(path.as_path()));
    assert_eq!(config.apps[0].name, "shop");
    // Read-only and private modes are fine too.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    check_permissions(&fs::metadata(&path).unwrap(), &path, euid()).unwrap();
}

#[test]
fn group_writable_file_is_refused() {
    let (_dir, path) = config_file(MINIMAL, 0o664);
    let shown = unsafe_message(&path, euid());
    assert!(shown.contains("writable by its group"), "{shown}");
    assert!(shown.contains("0664"), "{shown}");
    assert!(
        shown.contains(&format!("chmod go-w {}", path.display())),
        "{shown}"
    );
    assert!(matches!(load(&path), Err(ConfigError::Unsafe { .. })));
}

#[test]
fn world_writable_file_is_refused() {
    let (_dir, path) = config_file(MINIMAL, 0o646);
    let shown = unsafe_message(&path, euid());
    assert!(shown.contains("writable by all users"), "{shown}");
    assert!(shown.contains("chmod go-w"), "{shown}");
    let (_dir2, path2) = config_file(MINIMAL, 0o666);
    assert!(unsafe_message(&path2, euid()).contains("its group and by all users"));
}

#[test]
fn file_owned_by_another_user_is_refused() {
    let (_dir, path) = config_file(MINIMAL, 0o644);
    let me = euid();
    let (owner, as_euid) = if me == 0 {
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        (65534, 0)
    } else {
        // Not root: the file is ours; pretend to run as someone else.
        (me, me + 1)
    };
    let shown = unsafe_message(&path, as_euid);
    assert!(shown.contains(&format!("owned by uid {owner}")), "{shown}");
    assert!(
        shown.contains(&format!("chown root {}", path.display())),
        "{shown}"
    );
    if me == 0 {
        assert!(matches!(load(&path), Err(ConfigError::Unsafe { .. })));
        // The owner itself may use its own file.
        let meta = fs::metadata(&path).unwrap();
        check_permissions(&meta, &path, 65534).unwrap();
    }
}

#[test]
fn not_a_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let meta = fs::metadata(dir.path()).unwrap();
    let err = check_permissions(&meta, dir.path(), euid()).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert!(matches!(load(dir.path()), Err(ConfigError::Unsafe { .. })));
}

#[test]
fn too_large_file_is_refused_before_reading() {
    let (_dir, path) = config_file(&"#".repeat(MAX_SIZE as usize + 1), 0o644);
    let err = load(&path).unwrap_err();
    assert!(
        matches!(err, ConfigError::TooLarge { size, .. } if size == MAX_SIZE + 1),
        "{err:?}"
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let err = load(Path::new("/nonexistent/relwatch/config.yaml")).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[test]
fn non_utf8_file_is_a_located_syntax_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    fs::write(&path, b"grace: 5m\napps: [\xff]\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let err = load(&path).unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Syntax {
                line: 2,
                column: 8,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let err = load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Unsafe { .. }), "{err:?}");
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn orphans_is_warning_info_or_off() {
    assert_eq!(parse(MINIMAL).unwrap().apps[0].orphans, Orphans::Warning);
    for o in Orphans::ALL {
        let config = parse(&format!("{MINIMAL}    orphans: {}\n", o.as_str())).unwrap();
        assert_eq!(config.apps[0].orphans, o);
        assert!(config
            .render()
            .contains(&format!("    orphans: {}\n", o.as_str())));
    }
    assert_refused(
        &format!("{MINIMAL}    orphans: quiet\n"),
        4,
        "apps[0].orphans",
        &["expected warning, info or off", "quiet"],
    );
}

#[test]
fn user_is_a_name_on_this_host_or_a_uid() {
    assert_eq!(parse(MINIMAL).unwrap().apps[0].user, None);
    assert_eq!(
        parse(&format!("{MINIMAL}    user: 4242\n")).unwrap().apps[0].user,
        Some(4242)
    );
    assert_eq!(
        parse(&format!("{MINIMAL}    user: root\n")).unwrap().apps[0].user,
        Some(0)
    );
    let text = format!("{MINIMAL}    user: no-such-user-relwatch\n");
    let err = parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("no user \"no-such-user-relwatch\" on this host"),
        "{err}"
    );
    let err = parse(&format!("{MINIMAL}    user: -1\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected a uid"), "{err}");
}
