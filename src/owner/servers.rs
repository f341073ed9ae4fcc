//! App servers, and the signal that stops each one gracefully: one row per server, the only
//! place relwatch knows one server from another. A remedy that ends a process nothing would
//! restart (no supervisor) sends the row's signal; docs/ATTRIBUTION.md ("Remedies") prints this
//! table.
//!
//! A row says too whether the master ends its workers when it stops. When it does, the master
//! alone is signalled; when it does not, or the server is not known, every process of the tree
//! is (a home-grown master whose workers outlive it under PID 1 was the seed incident).

use crate::snapshot::Process;
use std::os::unix::ffi::OsStrExt;

/// One app server.
#[derive(Debug, PartialEq, Eq)]
pub struct Server {
    /// Its name for people.
    pub name: &'static str,
    /// Program names (the last component of the first or second argument, or `comm`).
    pub programs: &'static [&'static [u8]],
    /// Process titles the server sets, by their start (`puma 6.4.2 (tcp://...)`).
    pub titles: &'static [&'static [u8]],
    /// A further argument that must be present (`queue:work` after `artisan`), if any.
    pub with_arg: &'static [&'static [u8]],
    /// The signal (`kill` option) that stops it gracefully.
    pub stop: &'static str,
    /// Stopping the master ends its workers.
    pub ends_workers: bool,
    /// The signal to the master that starts every worker again from where the configuration
    /// says (php-fpm's USR2: a pool's `chdir` through `current`), if any. A worker on an old
    /// release under such a master is fixed by it: ending the worker alone would have the
    /// master start another in the same place.
    pub respawn: Option<&'static str>,
}

/// Every known app server; the first row that matches a process wins.
pub static SERVERS: [Server; 9] = [
    // SIGTERM makes uWSGI 2.0 reload (it stays on the deleted directory): INT stops it.
    row(
        "uWSGI",
        &[b"uwsgi", b"uwsgi-core"],
        &[b"uwsgi"],
        &[],
        "-INT",
        true,
    ),
    // TERM: graceful stop, each worker finishes its request.
    row(
        "gunicorn",
        &[b"gunicorn"],
        &[b"gunicorn"],
        &[],
        "-TERM",
        true,
    ),
    // TERM: graceful stop of the cluster, workers included (tests/appservers.rs runs it).
    row(
        "puma",
        &[b"puma"],
        &[b"puma ", b"puma:"],
        &[],
        "-TERM",
        true,
    ),
    // QUIT: graceful stop; TERM and INT stop at once.
    row(
        "unicorn",
        &[b"unicorn", b"unicorn_rails"],
        &[b"unicorn "],
        &[],
        "-QUIT",
        true,
    ),
    // TERM: warm shutdown, running tasks finish.
    row("celery", &[b"celery"], &[], &[b"worker"], "-TERM", true),
    // QUIT: graceful stop; TERM and INT stop at once. USR2: re-reads its configuration and
    // starts every worker again (each chdirs into the pool's `chdir` anew), same master pid.
    Server {
        respawn: Some("-USR2"),
        ..row("php-fpm", &[], &[b"php-fpm"], &[], "-QUIT", true)
    },
    // TERM: the worker finishes its job first.
    row(
        "Laravel queue",
        &[b"artisan"],
        &[],
        &[b"queue:work", b"queue:listen", b"horizon"],
        "-TERM",
        false,
    ),
    row("node", &[b"node", b"nodejs"], &[], &[], "-TERM", false),
    // Anything else: TERM, to every process of the tree.
    row("unknown", &[], &[], &[], "-TERM", false),
];

const fn row(
    name: &'static str,
    programs: &'static [&'static [u8]],
    titles: &'static [&'static [u8]],
    with_arg: &'static [&'static [u8]],
    stop: &'static str,
    ends_workers: bool,
) -> Server {
    Server {
        name,
        programs,
        titles,
        with_arg,
        stop,
        ends_workers,
        respawn: None,
    }
}

impl Server {
    fn matches(&self, p: &Process) -> bool {
        let args: Vec<&[u8]> = p.cmdline.iter().map(|a| a.as_bytes()).collect();
        let first = args.first().copied().unwrap_or_default();
        let named = args
            .iter()
            .take(2)
            .map(|a| super::base_bytes(a.split(|&c| c == b' ').next().unwrap_or_default()))
            .chain(std::iter::once(&*p.comm))
            .any(|n| self.programs.contains(&n));
        let titled = self.titles.iter().any(|t| first.starts_with(t));
        let arg = self.with_arg.is_empty() || args.iter().any(|a| self.with_arg.contains(a));
        (named || titled) && arg || self.programs.is_empty() && self.titles.is_empty()
    }
}

/// The app server `p` is (the last row, `unknown`, when none).
pub fn of(p: &Process) -> &'static Server {
    SERVERS.iter().find(|s| s.matches(p)).unwrap_or(unknown())
}

/// The last row: a server not known.
pub fn unknown() -> &'static Server {
    &SERVERS[SERVERS.len() - 1]
}

/// The table as docs/ATTRIBUTION.md prints it (a test keeps the two the same).
pub fn markdown() -> String {
    let mut out = String::from(
        "| Server | Stop signal | Signalled | Workers started again by |\n|---|---|---|---|\n",
    );
    for s in &SERVERS {
        let whom = if s.ends_workers {
            "the master (it ends its workers)"
        } else {
            "every process of the tree"
        };
        let respawn = s
            .respawn
            .map_or("-".to_string(), |sig| format!("`{sig}` to the master"));
        out.push_str(&format!(
            "| {} | `{}` | {whom} | {respawn} |\n",
            s.name, s.stop
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::LinkError;
    use crate::testkit::process;

    fn server(args: &[&str]) -> &'static str {
        of(&process(10, 1, Err(LinkError::Absent), 1.0, args)).name
    }

    #[test]
    fn servers_by_program_title_and_argument() {
        assert_eq!(server(&["uwsgi", "--ini", "app.ini"]), "uWSGI");
        assert_eq!(
            server(&["/usr/bin/python3", "/usr/bin/gunicorn", "app:app"]),
            "gunicorn"
        );
        assert_eq!(server(&["puma 6.4.2 (tcp://0.0.0.0:9292) [app]"]), "puma");
        assert_eq!(server(&["puma: cluster worker 0: 1234 [app]"]), "puma");
        assert_eq!(server(&["unicorn master -c unicorn.rb"]), "unicorn");
        assert_eq!(
            server(&["/usr/bin/python3", "/usr/bin/celery", "-A", "p", "worker"]),
            "celery"
        );
        assert_eq!(
            server(&["php-fpm: master process (/etc/php/fpm.conf)"]),
            "php-fpm"
        );
        assert_eq!(server(&["php", "artisan", "queue:work"]), "Laravel queue");
        assert_eq!(server(&["php", "artisan", "migrate"]), "unknown");
        assert_eq!(server(&["node", "/srv/api/current/server.js"]), "node");
        assert_eq!(server(&["php", "worker.php"]), "unknown");
    }

    /// The table in docs/ATTRIBUTION.md is this one.
    #[test]
    fn the_docs_print_this_table() {
        let docs = include_str!("../../docs/ATTRIBUTION.md");
        assert!(
            docs.contains(&markdown()),
            "docs/ATTRIBUTION.md must hold:\n{}",
            markdown()
        );
    }
}
