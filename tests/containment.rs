//! Placement attacks by a local user (issue 18, items 6, 5 and 3): a deploy root is what it
//! claims only inside itself, paths from another mount namespace need identity, and roles
//! count only processes with identity. Each test builds what the user controls, runs the
//! built binary, and asserts the safe outcome. docs/SECURITY.md lists them with their
//! promises.

mod util;

use std::os::unix::fs::symlink;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use util::*;

/// A uid with no passwd entry: "a local user".
const USER: u32 = 4_242_423;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether a test that needs `what` can run; with `CI` set it fails instead (`util::skip`).
fn can_run(test: &str, ok: bool, what: &str) -> bool {
    if !ok {
        skip(&format!("{test} needs {what}"));
    }
    ok
}

/// `cmd` run as `uid` (and its gid of the same number, no supplementary groups) by setpriv.
fn as_uid(cmd: &mut Command, uid: u32) -> &mut Command {
    cmd.args([
        format!("--reuid={uid}"),
        format!("--regid={uid}"),
        "--clear-groups".into(),
    ])
}

/// A deploy root whose temporary parent other users may traverse (a user's processes can
/// then sit in its releases, as in a world-readable `/srv`).
fn root_others_can_reach() -> DeployRoot {
    let root = DeployRoot::new();
    std::fs::set_permissions(root.tmp(), std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", root.tmp().display()));
    root
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

/// Runs `script` with `sh -c` as [`USER`] in a user and mount namespace of its own
/// (`unshare -Urm`), and returns it once it has exec'd `sleep`.
fn sleep_in_own_namespace(script: &str, as_user: bool) -> Child {
    let mut cmd = Command::new("setpriv");
    if as_user {
        as_uid(&mut cmd, USER);
    }
    let child = Child::spawn(
        cmd.args(["unshare", if as_user { "-Urm" } else { "-m" }, "sh", "-c"])
            .arg(script)
            .current_dir("/"),
    );
    poll("the namespaced process to run sleep", || {
        (comm(child.pid()).as_deref() == Some("sleep")).then_some(())
    });
    child
}

/// Whether unprivileged users may make user namespaces here.
fn userns_allowed() -> bool {
    as_uid(&mut Command::new("setpriv"), USER)
        .args(["unshare", "-Urm", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Regression: a user's `unshare -Urm`, a tmpfs over the app's root and a cwd at
/// `ROOT/releases/999` made a CRITICAL `deleted-release` for an app that has no such release:
/// the path was believed as text. Another mount namespace's path now counts only where the
/// identity of the cwd backs it (its device is the releases'): the process is counted in
/// `other_mount_ns` and placed nowhere.
#[test]
fn a_mount_over_the_app_in_a_users_namespace_invents_no_deleted_release() {
    let test = "a_mount_over_the_app_in_a_users_namespace_invents_no_deleted_release";
    if !can_run(test, is_root(), "root (to run processes as another uid)")
        || !can_run(test, userns_allowed(), "unprivileged user namespaces")
    {
        return;
    }
    let root = root_others_can_reach();
    root.release("1");
    root.switch("1");
    // The user's own directory on the app's filesystem: a bind of it keeps the device.
    let own = root.tmp().join("own");
    std::fs::create_dir(&own).unwrap();
    chown(&own, USER);
    let app = root.path().display().to_string();
    // The third: the bind, and the directory removed under its cwd (deleted, on the releases'
    // device: only the mount's root in its mountinfo, the user's own directory, tells).
    for (mount, then) in [
        (format!(r#"mount -t tmpfs none "{app}""#), ""),
        (format!(r#"mount --bind "{}" "{app}""#, own.display()), ""),
        (
            format!(r#"mount --bind "{}" "{app}""#, own.display()),
            r#" && rmdir "$PWD""#,
        ),
    ] {
        let fake = sleep_in_own_namespace(
            &format!(
                r#"{mount} && mkdir -p "{app}/releases/999" && cd "{app}/releases/999"{then} && exec sleep 1000"#
            ),
            true,
        );
        let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
        assert!(
            findings_of(&doc, "deleted-release").is_empty(),
            "{mount}\n{run}"
        );
        assert!(process(&doc, fake.pid()).is_none(), "{mount}\n{run}");
        assert_eq!(doc["scan"]["other_mount_ns"], 1, "{mount}\n{run}");
        assert_eq!(run.code, 0, "{mount}\n{run}");
    }
}

/// A process in another mount namespace under our root (a systemd sandbox) whose cwd lies in
/// a release's subdirectory on the releases' own filesystem is still placed by that path.
#[test]
fn a_sandboxed_worker_in_an_old_release_is_still_placed() {
    let test = "a_sandboxed_worker_in_an_old_release_is_still_placed";
    if !can_run(test, is_root(), "root (for a mount namespace)") {
        return;
    }
    let root = DeployRoot::new();
    let r1 = root.release("1");
    std::fs::create_dir(r1.join("web")).unwrap();
    root.switch("1");
    let worker = sleep_in_own_namespace(
        &format!(r#"cd "{}/web" && exec sleep 1000"#, r1.display()),
        false,
    );
    wait_started_before_now(worker.pid());
    root.release("2");
    root.switch("2");
    let (run, doc) = check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()]);
    let old = findings_of(&doc, "old-release");
    assert_eq!(old.len(), 1, "{run}");
    assert_eq!(pids(old[0]), [i64::from(worker.pid())], "{run}");
    assert_eq!(doc["scan"]["other_mount_ns"], 0, "{run}");
}

/// Writes a config with one app `shop` at `root` and the role lines `roles` (and `extra`
/// app lines), readable only as a root-owned config may be.
fn shop_config(root: &DeployRoot, extra: &str, roles: &str) -> std::path::PathBuf {
    let path = root.tmp().join("relwatch.yaml");
    let body = format!(
        "apps:\n  - name: shop\n    root: {}\n{extra}    roles:\n{roles}",
        root.path().display()
    );
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

/// Runs `sh -c 'sleep SECS; :' ARGS...` as [`USER`] (or root) in `dir`: a process whose
/// command line says what the user likes.
fn sh_sleep_as(uid: u32, dir: &Path, secs: &str, args: &[&std::ffi::OsStr]) -> Child {
    let child = Child::spawn(
        as_uid(&mut Command::new("setpriv"), uid)
            .args(["sh", "-c", &format!("sleep {secs}; :")])
            .args(args)
            .current_dir(dir),
    );
    poll("the shell to start its sleep", || {
        (!child.children().is_empty()).then_some(())
    });
    child
}

/// Regression: two `sh -c "sleep ..." /srv/shop/current/artisan queue:work` of a user, from
/// their home, made a CRITICAL `missing` disappear: argv text counted as a queue worker. A
/// role counts only processes whose cwd or exe is in the app, run by the releases' owner,
/// root or the app's `user:`.
#[test]
fn argv_alone_never_fills_a_role() {
    let test = "argv_alone_never_fills_a_role";
    if !can_run(test, is_root(), "root (to run processes as another uid)") {
        return;
    }
    let root = root_others_can_reach();
    root.release("1");
    root.switch("1");
    let home = root.tmp().join("home");
    std::fs::create_dir(&home).unwrap();
    let artisan = root.current().join("artisan");
    let args = [artisan.as_os_str(), "queue:work".as_ref()];
    let _fakes = [
        sh_sleep_as(USER, &home, "1001", &args),
        sh_sleep_as(USER, &home, "1001", &args),
    ];
    let cfg = shop_config(
        &root,
        "",
        "      - name: queue\n        match: \"artisan queue:work\"\n        min: 2\n",
    );
    let (run, doc) = check_json(["--config".as_ref(), cfg.as_os_str()]);
    let missing = findings_of(&doc, "missing");
    assert_eq!(missing.len(), 1, "{run}");
    assert!(pids(missing[0]).is_empty(), "{run}");
    assert_eq!(run.code, 2, "{run}");
}

/// Regression: a user's look-alike of the real singleton (its cwd in the world-readable
/// release) started after it made the `duplicate` remedy keep the user's pid and kill the real
/// scheduler. A process of another uid is no instance: no duplicate; with `user:` naming
/// that uid, it is one again, and the remedy keeps the newest.
#[test]
fn another_uids_look_alike_is_no_instance() {
    let test = "another_uids_look_alike_is_no_instance";
    if !can_run(test, is_root(), "root (to run processes as another uid)") {
        return;
    }
    let root = root_others_can_reach();
    let r1 = root.release("1");
    root.switch("1");
    let real = sh_sleep_as(0, &r1, "1002", &["celery".as_ref(), "beat".as_ref()]);
    wait_started_before_now(real.pid());
    let fake = sh_sleep_as(USER, &r1, "1002", &["celery".as_ref(), "beat".as_ref()]);
    let role = "      - name: scheduler\n        match: \"celery beat\"\n        singleton: true\n";
    let cfg = shop_config(&root, "", role);
    let (run, doc) = check_json(["--config".as_ref(), cfg.as_os_str()]);
    assert!(findings_of(&doc, "duplicate").is_empty(), "{run}");
    assert!(
        !run.stdout.contains(&format!("kill -TERM {}", real.pid())),
        "{run}"
    );

    let cfg = shop_config(&root, &format!("    user: {USER}\n"), role);
    let (run, doc) = check_json(["--config".as_ref(), cfg.as_os_str()]);
    let dup = findings_of(&doc, "duplicate");
    assert_eq!(dup.len(), 1, "{run}");
    assert_eq!(
        pids(dup[0]),
        [i64::from(real.pid()), i64::from(fake.pid())],
        "{run}"
    );
}

/// Regression: `layout::contain` took "out of file descriptors" (`EMFILE` from `open` or
/// `openat2`) for "not beneath the root", so a root read under fd exhaustion was a CRITICAL
/// `broken-current`; and `/proc` that could not be listed for the same reason was blamed on
/// procfs ("is procfs mounted?"). Under every open files limit from 4 to 16, `check` either
/// answers as with no limit or ends UNKNOWN saying it ran out of file descriptors, where, and
/// how to raise the limit; never a finding about the root, never procfs.
#[test]
fn running_out_of_file_descriptors_is_unknown_never_broken_current() {
    let test = "running_out_of_file_descriptors_is_unknown_never_broken_current";
    let has_prlimit = Command::new("prlimit").arg("--version").output().is_ok();
    if !can_run(test, has_prlimit, "prlimit (util-linux)") {
        return;
    }
    let root = DeployRoot::new();
    let r1 = root.release("1");
    root.switch("1");
    let _worker = Child::sleep_in(&r1);
    let (mut in_layout, mut in_proc) = (false, false);
    let mut last = None;
    for n in 4..=16 {
        let run = run_program(
            "prlimit",
            vec![
                format!("--nofile={n}").into(),
                env!("CARGO_BIN_EXE_relwatch").into(),
                "check".into(),
                root.path().into(),
            ],
        );
        let all = format!("{}{}", run.stdout, run.stderr);
        for wrong in ["broken-current", "CRITICAL", "procfs", "outside"] {
            assert!(!all.contains(wrong), "--nofile={n}: {wrong}\n{run}");
        }
        let out_of_fds = run.stderr.contains("out of file descriptors")
            && run.stderr.contains("raise the open files limit");
        match run.code {
            // The dynamic loader itself may find no descriptor left for a library.
            127 => assert!(run.stderr.contains("shared libraries"), "{run}"),
            3 => {
                assert!(
                    out_of_fds,
                    "--nofile={n}: UNKNOWN for another reason\n{run}"
                );
                in_layout |= run.stderr.contains(&format!(
                    "{}: out of file descriptors while reading its releases",
                    root.path().display()
                ));
                in_proc |= run.stderr.contains("cannot read /proc: ");
            }
            0 => assert!(
                run.stdout.contains("release 1 (current): 1 process"),
                "{run}"
            ),
            _ => panic!("--nofile={n}: unexpected exit\n{run}"),
        }
        last = Some(run);
    }
    let Some(last) = last else { unreachable!() };
    assert_eq!(last.code, 0, "16 descriptors are enough\n{last}");
    assert!(in_layout, "no limit ran out while reading the root");
    assert!(in_proc, "no limit ran out while reading /proc");
}

/// Checks `roots` (in this order) as JSON: the app named `loser` is `broken-current` with no
/// release and no process, and `worker` is placed in `owner`'s current release.
fn one_claim_holds(roots: &[&Path], loser: &str, owner: &str, worker: i32) {
    let mut args: Vec<&std::ffi::OsStr> = roots.iter().map(|r| r.as_os_str()).collect();
    args.extend([std::ffi::OsStr::new("--grace"), std::ffi::OsStr::new("0s")]);
    let (run, doc) = check_json(args);
    let broken = findings_of(&doc, "broken-current");
    assert_eq!(broken.len(), 1, "{run}");
    assert_eq!(broken[0]["app"], loser, "{run}");
    assert!(placed_in(&doc, loser).is_empty(), "{run}");
    let Some(lost) = app(&doc, loser) else {
        panic!("no app {loser}\n{run}");
    };
    assert!(release_names(lost).is_empty(), "{run}");
    assert_eq!(placed_in(&doc, owner), [i64::from(worker)], "{run}");
    assert!(findings_of(&doc, "old-release").is_empty(), "{run}");
    assert_eq!(run.code, 2, "{run}");
}

/// Regression (issue 18, "never a directory another root already claims"): a release of one
/// root that itself looks like a root (`releases/1` with a `current` and a `releases/` of its
/// own) claimed directories inside the outer root's release: a worker of the outer app's
/// current release was counted in the inner "app". A releases directory that lies inside
/// another root's is no releases directory: the inner root is `broken-current`, with nothing
/// placed in it, whichever root is named first.
#[test]
fn a_root_inside_another_roots_release_claims_nothing() {
    let outer = DeployRoot::named("outer");
    let r1 = outer.release("1");
    outer.switch("1");
    let inner_release = r1.join("releases/a");
    std::fs::create_dir_all(&inner_release).unwrap();
    symlink("releases/a", r1.join("current")).unwrap();
    let worker = Child::sleep_in(&inner_release);
    for roots in [[r1.as_path(), outer.path()], [outer.path(), r1.as_path()]] {
        one_claim_holds(&roots, "1", "outer", worker.pid());
    }
}

/// Regression: `/srv/b/current -> /srv/b/x` makes `/srv/b` b's releases directory, and
/// `/srv/b/x` (b's current release) with a `current -> r1` of its own claimed `/srv/b/x` as
/// its releases directory: b's worker in `x/r1` was placed in "x". The inner claimant is
/// `broken-current` and b keeps its worker.
#[test]
fn a_release_that_claims_itself_as_a_releases_directory_claims_nothing() {
    let tmp = tempdir();
    let b = tmp.path().join("b");
    let x = b.join("x");
    std::fs::create_dir_all(x.join("r1")).unwrap();
    symlink(&x, b.join("current")).unwrap();
    symlink("r1", x.join("current")).unwrap();
    let worker = Child::sleep_in(x.join("r1"));
    for roots in [[x.as_path(), b.as_path()], [b.as_path(), x.as_path()]] {
        one_claim_holds(&roots, "x", "b", worker.pid());
    }
}
