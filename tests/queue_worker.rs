//! A Laravel queue worker (`php ROOT/current/artisan queue:work`, as supervisord or systemd
//! configs start it) through a deploy: it keeps the release that was current when it started,
//! is found on it after the switch and, once the cleanup deletes it, on a deleted release; the
//! printed remedy (TERM: `queue:work` finishes its job and exits on it) is run and the next
//! `check` is OK (issue 19). Laravel itself comes from Packagist, which this machine cannot
//! reach; `artisan` here is a stand-in that loops the way `queue:work` does, so what relwatch
//! sees (the interpreter, the argv, the cwd, the start time) is the same.

mod util;

use std::process::Command;

use util::fixes::{run_fixes, until_ok};
use util::*;

/// Loops like `queue:work`: waits for jobs until a signal ends it.
const ARTISAN: &str =
    "<?php\nif (($argv[1] ?? '') !== 'queue:work') { exit(1); }\nwhile (true) { sleep(1); }\n";

#[test]
fn a_laravel_queue_worker_is_found_on_its_release_and_its_remedy_ends_it() {
    let php = std::path::Path::new("/usr/bin/php");
    if !php.exists() {
        skip("php is not installed: apt-get install php-cli (scripts/test-deps installs it)");
        return;
    }
    let root = DeployRoot::new();
    root.write("releases/1/artisan", ARTISAN);
    root.switch("1");
    wait_after_switch();
    let worker = Child::spawn(
        Command::new(php)
            .arg(root.current().join("artisan"))
            .arg("queue:work")
            .current_dir("/"),
    );
    let pid = worker.pid();
    poll("php to run artisan", || {
        (comm(pid).as_deref() == Some("php")).then_some(())
    });
    wait_started_before_now(pid);

    root.write("releases/2/artisan", ARTISAN);
    root.switch("2");
    let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
    assert_eq!(run.code, 1, "{run}");
    let old = findings_of(&doc, "old-release");
    assert_eq!(old.len(), 1, "{run}");
    assert_eq!(pids(old[0]), [i64::from(pid)], "{run}");
    assert!(bytestr_is(&old[0]["release"], "1"), "{run}");

    root.delete("1");
    let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
    assert_eq!(run.code, 2, "{run}");
    let deleted = findings_of(&doc, "deleted-release");
    assert_eq!(deleted.len(), 1, "{run}");
    assert_eq!(pids(deleted[0]), [i64::from(pid)], "{run}");
    let ran = run_fixes(&doc, &["kill"]);
    assert_eq!(ran, [["kill", "-TERM", &pid.to_string()]], "{run}");

    until_ok(&root);
    drop(worker);
}
