//! The commented example configuration printed by `relwatch config example`.
//!
//! The same text is shipped as `packaging/relwatch.example.yaml`; a unit test keeps the two
//! identical, and another checks that the example parses to the structure it describes.

/// The commented example configuration (the text of `packaging/relwatch.example.yaml`).
pub fn example() -> &'static str {
    EXAMPLE
}

const EXAMPLE: &str = r#"# relwatch configuration.
#
# relwatch reads /etc/relwatch/config.yaml unless `--config FILE` says otherwise. Check a
# file with `relwatch config check [FILE]`: it prints the effective configuration, every
# default filled in. Command-line flags override this file; this file overrides the
# built-in defaults.
#
# The file must be owned by root (or by the user relwatch runs as) and must not be
# writable by group or others: it decides what a root process reports. Fix with
#   chown root FILE && chmod go-w FILE
#
# Durations are written like "90s", "5m", "1h" or "1h 30m".
# Regexes use the syntax of the Rust regex crate (https://docs.rs/regex). They are
# searched in a process's command line, its arguments joined by single spaces, as written:
# anchor them with ^ and $ to match the whole command line. Quote them, since YAML gives
# characters such as : # [ ] { } * & ! a meaning of their own.
#
# Unknown keys, repeated keys and wrong types are refused, with the line and column.

# How long a process may keep running an old release after a deploy before that is a
# warning (before, it is only reported as information). Applies to every app that does
# not set its own. Default: 5m.
grace: 5m

# Directories to search for deploy roots (directories with a `current` link) when no app
# is listed below. Optional; absolute paths; each must exist (a typo is an error, exit 3).
discover:
  - /var/www
  - /srv

# The applications deployed on this host. Optional: without apps, relwatch looks in the
# `discover` directories.
apps:
  - name: shop                # unique; used in reports, JSON and metrics
    root: /srv/shop           # absolute: a directory with `current`, or the current link itself
    releases: releases        # optional: where the releases are, relative to root
    grace: 2m                 # optional: this app's grace period
    orphans: warning          # optional: what a process that lost its supervisor, or a
                              # hand-started one left on an old release, is worth: warning
                              # (default), info, or off (for hosts that start workers by hand)
    # user: deploy            # optional: a user (or uid) the app runs as besides the owner of
                              # its releases and root; only their processes fill a role
    ignore:                   # optional: leave out processes whose command line matches
      - "^/usr/sbin/sshd"
    roles:                    # optional: kinds of processes and how many of each to expect
      - name: scheduler       # unique within the app
        match: "celery .*beat"   # regex over the command line
        singleton: true          # at most one instance across all releases (default: false)
      - name: queue
        match: "artisan queue:work"
        min: 2                   # at least two on the current release (default: no minimum)
        max: 8                   # at most eight (default: no maximum)
"#;
