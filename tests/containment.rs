//! Placement attacks by a local user (issue 18): a deploy root is what it claims only inside
//! itself. Each test builds what the user controls, runs the built
//! binary, and asserts the safe outcome. docs/SECURITY.md lists them with their promises.

mod util;

use std::os::unix::fs::symlink;
use std::path::Path;
use util::*;

/// A uid with no passwd entry: "a local user".
const USER: u32 = 4_242_423;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether a test that needs `what` can run; with `CI=true` it fails instead of skipping.
fn can_run(test: &str, ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} cannot run: it needs {what}"
    );
    eprintln!("skipped {test}: it needs {what}");
    false
}

/// Hands `path` (not following links) to `uid`, as the user would own what they made.
fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

/// The processes `check` placed in `app`.
fn placed_in(doc: &serde_json::Value, app: &str) -> Vec<i64> {
    array(doc, "processes")
        .iter()
        .filter(|p| p["app"] == app)
        .filter_map(|p| p["pid"].as_i64())
        .collect()
}

/// Regression: a user's discovered root whose absolute `current` pointed into another app's
/// releases made them its own: the victim's stale worker showed under the attacker's app. Now
/// the attacker's root has no releases (`broken-current`), and the victim's worker is the
/// victim's old release.
#[test]
fn a_current_into_another_users_app_claims_nothing() {
    let test = "a_current_into_another_users_app_claims_nothing";
    if !can_run(
        test,
        is_root(),
        "root (to own the attacker's root as another uid)",
    ) {
        return;
    }
    let victim = DeployRoot::named("shop");
    let r1 = victim.release("1");
    victim.release("2");
    victim.switch("1");
    let worker = Child::sleep_in(&r1);
    wait_started_before_now(worker.pid());
    victim.switch("2");
    let evil = victim.tmp().join("evil");
    std::fs::create_dir(&evil).unwrap();
    symlink(victim.release_path("2"), evil.join("current")).unwrap();
    // A Capistrano marker, without a `releases/` of its own: the link's target decides.
    std::fs::write(evil.join("revisions.log"), "").unwrap();
    for p in [&evil, &evil.join("current"), &evil.join("revisions.log")] {
        chown(p, USER);
    }
    let (run, doc) = check_json([
        "--discover".as_ref(),
        victim.tmp().as_os_str(),
        "--grace".as_ref(),
        "0s".as_ref(),
    ]);
    let broken = findings_of(&doc, "broken-current");
    assert_eq!(broken.len(), 1, "{run}");
    assert_eq!(broken[0]["app"], "evil", "{run}");
    assert!(placed_in(&doc, "evil").is_empty(), "{run}");
    assert!(
        release_names(app(&doc, "evil").unwrap()).is_empty(),
        "{run}"
    );
    let old = findings_of(&doc, "old-release");
    assert_eq!(old.len(), 1, "{run}");
    assert_eq!(old[0]["app"], "shop", "{run}");
    assert_eq!(pids(old[0]), [i64::from(worker.pid())], "{run}");
}

/// Regression: a root whose `releases` was a symlink to `/root` listed `/root`'s directory
/// names in reports. Now nothing of `/root` is read into them.
#[test]
fn a_releases_link_to_root_home_lists_nothing_of_it() {
    let test = "a_releases_link_to_root_home_lists_nothing_of_it";
    if !can_run(test, is_root(), "root (to write a marker into /root)") {
        return;
    }
    let secret = tempfile::Builder::new()
        .prefix("relwatch-secret-")
        .tempdir_in("/root")
        .expect("create a directory in /root");
    let name = secret.path().file_name().unwrap().to_owned();
    let tmp = tempdir();
    let evil = std::fs::canonicalize(tmp.path()).unwrap().join("evil");
    std::fs::create_dir(&evil).unwrap();
    symlink("/root", evil.join("releases")).unwrap();
    // The user does not know the names in /root: `current` names one of their choosing.
    symlink("releases/guess", evil.join("current")).unwrap();
    let (run, doc) = check_json(["--discover".as_ref(), tmp.path().as_os_str()]);
    assert_eq!(findings_of(&doc, "broken-current").len(), 1, "{run}");
    assert!(
        release_names(app(&doc, "evil").unwrap()).is_empty(),
        "{run}"
    );
    let text = relwatch([
        "check".as_ref(),
        "--discover".as_ref(),
        tmp.path().as_os_str(),
    ]);
    for out in [&run.stdout, &text.stdout] {
        assert!(
            !out.contains(name.to_str().unwrap()),
            "a name from /root was printed\n{out}"
        );
    }
}

/// Regression: `.dep/` plus `current -> /etc` made `/` a releases directory (its directories
/// listed as releases, root's processes placed in "releases" such as /usr). Now the root is
/// `broken-current` with no releases and no process placed in it.
#[test]
fn a_current_to_etc_makes_no_releases_of_the_filesystem_root() {
    let tmp = tempdir();
    let evil = std::fs::canonicalize(tmp.path()).unwrap().join("evil");
    std::fs::create_dir_all(evil.join(".dep")).unwrap();
    symlink("/etc", evil.join("current")).unwrap();
    let (run, doc) = check_json(["--discover".as_ref(), tmp.path().as_os_str()]);
    let broken = findings_of(&doc, "broken-current");
    assert_eq!(broken.len(), 1, "{run}");
    let a = app(&doc, "evil").unwrap_or_else(|| panic!("no app evil\n{run}"));
    assert!(release_names(a).is_empty(), "{run}");
    assert!(placed_in(&doc, "evil").is_empty(), "{run}");
}

/// A Deployer `current_path` elsewhere (`/var/www/html -> /srv/app/releases/7`), given by its
/// link, still has its releases; so does a root reached through a symlink of the same owner.
#[test]
fn a_root_given_by_its_link_keeps_its_releases() {
    let root = DeployRoot::named("app");
    root.release("6");
    root.release("7");
    root.switch("7");
    let html = root.tmp().join("html");
    symlink(root.release_path("7"), &html).unwrap();
    let (run, doc) = check_json([html.as_os_str()]);
    assert_eq!(run.code, 0, "{run}");
    let a = &array(&doc, "apps")[0];
    assert_eq!(release_names(a), [b("6"), b("7")], "{run}");
}

