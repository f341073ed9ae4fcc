//! Every way a process holds a release besides its cwd and exe (issue 20), against real
//! processes: a C program that `dlopen`s a `.so` from the release, a Python process whose
//! `PYTHONPATH` points into it, a process holding a log and an SQLite database open there, and
//! a process in `unshare --mount` with a bind mount of `current`. Each one's cwd and exe are
//! outside every release. For each: `old-release` after the switch, `in-use` lists it,
//! `deleted-release` after the cleanup, and nothing once it is restarted from `current`.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use util::*;

/// `relwatch check --format json ROOT --grace 0s`.
fn check_now(root: &DeployRoot) -> (Run, serde_json::Value) {
    check_json([root.path().as_os_str(), "--grace".as_ref(), "0s".as_ref()])
}

/// The one finding of `kind` naming `pid`, and the hows of its evidence about `pid`.
fn finding_for(doc: &serde_json::Value, kind: &str, pid: i32, run: &Run) -> Vec<String> {
    let found: Vec<_> = findings_of(doc, kind)
        .into_iter()
        .filter(|f| pids(f).contains(&i64::from(pid)))
        .collect();
    assert_eq!(found.len(), 1, "one {kind} finding names pid {pid}\n{run}");
    evidence_hows(found[0], pid)
}

/// What every holder goes through. `start(dir)` starts the process holding `dir` (a release
/// through `current`, or the release itself) with cwd and exe outside it, and returns once it
/// holds it; `how` is the evidence expected to place it.
fn lifecycle(root: &DeployRoot, how: &str, start: &dyn Fn(&Path) -> Child) {
    let r1 = root.release("1");
    root.switch("1");
    let holder = start(&r1);
    let (run, doc) = check_now(root);
    assert_eq!(
        run.code, 0,
        "on the current release nothing is reported\n{run}"
    );
    assert!(
        process(&doc, holder.pid()).is_some_and(|p| p["release_state"] == "current"),
        "pid {} is placed on the current release by its {how}\n{run}",
        holder.pid()
    );

    root.release("2");
    root.switch("2");
    let (run, doc) = check_now(root);
    assert_eq!(run.code, 1, "an old release is a warning\n{run}");
    let hows = finding_for(&doc, "old-release", holder.pid(), &run);
    assert!(
        hows.iter().any(|h| h == how),
        "placed by {how}: {hows:?}\n{run}"
    );

    let inuse = relwatch([
        "in-use".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        r1.as_os_str(),
    ]);
    assert_eq!(inuse.code, 1, "release 1 is in use\n{inuse}");
    let users = inuse.json()["paths"][0]["processes"].clone();
    assert!(
        users.as_array().is_some_and(|u| u
            .iter()
            .any(|u| u["pid"].as_i64() == Some(i64::from(holder.pid())))),
        "in-use lists pid {}\n{inuse}",
        holder.pid()
    );

    root.delete("1");
    let (run, doc) = check_now(root);
    assert_eq!(run.code, 2, "a deleted release is critical\n{run}");
    let hows = finding_for(&doc, "deleted-release", holder.pid(), &run);
    assert!(
        hows.iter().any(|h| h == how),
        "placed by {how}: {hows:?}\n{run}"
    );

    drop(holder);
    let again = start(&root.current());
    let (run, doc) = check_now(root);
    assert_eq!(
        run.code, 0,
        "restarted from current, nothing is reported\n{run}"
    );
    assert!(
        process(&doc, again.pid()).is_some_and(|p| p["release_state"] == "current"),
        "the restarted pid {} is on the current release\n{run}",
        again.pid()
    );
}

/// `/proc/PID/maps` or `/proc/PID/fd` of `pid` names `what`.
fn holds(pid: i32, what: &str) -> bool {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .any(|t| t.to_string_lossy().contains(what))
        })
        .unwrap_or(false);
    maps.contains(what) || fds
}

fn gcc(args: &[&std::ffi::OsStr]) {
    let out = Command::new("gcc")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("gcc: {e}"));
    assert!(out.status.success(), "gcc {args:?}: {out:?}");
}

/// A C program (`EXT=PATH loader`) that `dlopen`s `PATH` and waits, built in `root`'s temp
/// dir; and `lib/ext.so` built into releases 1 and 2.
fn loader_and_libraries(root: &DeployRoot) -> PathBuf {
    let bin = root.tmp().join("loader");
    let src = root.tmp().join("loader.c");
    std::fs::write(
        &src,
        "#include <dlfcn.h>\n#include <stdlib.h>\n#include <unistd.h>\nint main(void) {\n\
         const char *ext = getenv(\"EXT\");\n\
         if (!ext || !dlopen(ext, RTLD_NOW)) return 1;\n for (;;) pause();\n}\n",
    )
    .expect("write loader.c");
    gcc(&[
        src.as_os_str(),
        "-o".as_ref(),
        bin.as_os_str(),
        "-ldl".as_ref(),
    ]);
    let ext_src = root.tmp().join("ext.c");
    std::fs::write(&ext_src, "int ext_answer(void) { return 42; }\n").expect("write ext.c");
    for release in ["1", "2"] {
        let lib = root.release(release).join("lib");
        std::fs::create_dir_all(&lib).expect("create lib/");
        let so = lib.join("ext.so");
        gcc(&[
            "-shared".as_ref(),
            "-fPIC".as_ref(),
            ext_src.as_os_str(),
            "-o".as_ref(),
            so.as_os_str(),
        ]);
    }
    bin
}

/// Starts `cmd` and waits until it maps `ext.so`.
fn mapping_ext(cmd: &mut Command) -> Child {
    let child = Child::spawn(cmd);
    poll("the loader to map ext.so", || {
        holds(child.pid(), "ext.so").then_some(())
    });
    child
}

/// A worker whose cwd is `/`, whose executable lies outside the releases and whose command
/// line names nothing, but that `dlopen`s `lib/ext.so` from the release: placed by the mapped
/// file.
#[test]
fn a_dlopened_library_holds_its_release() {
    if !util::runs("gcc", "--version") {
        return;
    }
    let root = DeployRoot::new();
    let bin = loader_and_libraries(&root);
    lifecycle(&root, "mapped-file", &|dir| {
        // In the environment, not the command line: only the mapped file names the release.
        mapping_ext(
            Command::new(&bin)
                .env("EXT", dir.join("lib/ext.so"))
                .current_dir("/"),
        )
    });
}

/// The same worker in a mount namespace of its own that mounts nothing (what systemd's
/// `PrivateTmp=` or `ProtectSystem=` give a service): its mapped file counts by identity (the
/// device and inode of the maps line are those at the path in our namespace), and once
/// deleted through its mounts. Path text from another namespace alone would not.
#[test]
fn a_library_mapped_in_a_private_mount_namespace_counts_by_identity() {
    if !util::runs("gcc", "--version") || !util::runs("unshare", "--version") {
        return;
    }
    let root = DeployRoot::new();
    let bin = loader_and_libraries(&root);
    lifecycle(&root, "mapped-file", &|dir| {
        mapping_ext(
            Command::new("unshare")
                .args(["--mount", "--propagation", "private"])
                .arg(&bin)
                .env("EXT", dir.join("lib/ext.so"))
                .current_dir("/"),
        )
    });
}

/// The loader in `unshare --mount`, loading `MNT/lib/ext.so` through its own bind mount of
/// the release at `MNT`: its maps name a path that means nothing in our namespace. Placed by
/// the mapped file, translated through its mounts and checked by identity.
#[test]
fn a_library_mapped_through_a_bind_mount_in_another_namespace_holds_its_release() {
    if !util::runs("gcc", "--version") || !util::runs("unshare", "--version") {
        return;
    }
    let root = DeployRoot::new();
    let bin = loader_and_libraries(&root);
    let mnt = root.tmp().join("mnt");
    std::fs::create_dir_all(&mnt).expect("create mnt/");
    lifecycle(&root, "mapped-file", &|dir| {
        let script = format!(
            "mount --bind '{}' '{}' && EXT='{}/lib/ext.so' exec '{}'",
            dir.display(),
            mnt.display(),
            mnt.display(),
            bin.display()
        );
        mapping_ext(
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(script)
                .current_dir("/"),
        )
    });
}

/// A Python worker started with `PYTHONPATH` into the release (its cwd `/`, its exe the
/// system's python): placed by the interpreter path, which is never shown beyond the release.
#[test]
fn a_python_path_into_a_release_holds_it() {
    if !util::runs("python3", "--version") {
        return;
    }
    let root = DeployRoot::new();
    for r in ["1", "2"] {
        root.write(format!("releases/{r}/lib/appmod.py"), "ANSWER = 42\n");
    }
    let secret = "/tmp/not-a-release-but-a-secret-token";
    lifecycle(&root, "interpreter-path", &|dir| {
        let dir = std::fs::canonicalize(dir).expect("canonical release");
        let path = format!("{}/lib:{secret}", dir.display());
        let ready = root.tmp().join(format!("ready-{}", std::process::id()));
        let _ = std::fs::remove_file(&ready);
        let child = Child::spawn(
            Command::new("python3")
                .args([
                    "-c",
                    "import appmod, sys, time; open(sys.argv[1], 'w').close(); time.sleep(1000)",
                ])
                .arg(&ready)
                .env("PYTHONPATH", path)
                .current_dir("/"),
        );
        poll("python to import appmod", || ready.exists().then_some(()));
        child
    });
    // Only the release directory is ever shown, not the rest of the value.
    let r2 = root.release("2");
    let child = Child::spawn(
        Command::new("python3")
            .args(["-c", "import time; time.sleep(1000)"])
            .env("PYTHONPATH", format!("{}/lib:{secret}", r2.display()))
            .current_dir("/"),
    );
    poll("python to start", || {
        (comm(child.pid()).as_deref() == Some("python3")).then_some(())
    });
    let (run, _) = check_now(&root);
    assert!(!run.stdout.contains(secret), "{run}");
}

/// A worker holding a log and an SQLite database open in the release, its cwd and exe
/// elsewhere (a Laravel `storage/` that was never moved to `shared/`): placed by the open files.
#[test]
fn an_open_log_and_database_hold_their_release() {
    if !util::runs("python3", "--version") {
        return;
    }
    let root = DeployRoot::new();
    for r in ["1", "2"] {
        std::fs::create_dir_all(root.release(r).join("storage")).expect("create storage/");
    }
    let script = "import sqlite3, sys, time\n\
                  log = open(sys.argv[1] + '/storage/app.log', 'a')\n\
                  db = sqlite3.connect(sys.argv[1] + '/storage/app.sqlite')\n\
                  db.execute('create table if not exists t (x)')\n\
                  db.commit()\n\
                  time.sleep(1000)\n";
    lifecycle(&root, "open-file", &|dir| {
        let child = Child::spawn(
            Command::new("python3")
                .args(["-c", script])
                .arg(dir)
                .current_dir("/"),
        );
        poll("the worker to open its log and database", || {
            (holds(child.pid(), "app.log") && holds(child.pid(), "app.sqlite")).then_some(())
        });
        child
    });
}

/// A process in `unshare --mount` with `current` bind-mounted at a directory of its own: its
/// cwd (`MNT/web`) means nothing in our namespace. Placed through its mounts, by identity.
#[test]
fn a_bind_mount_in_another_mount_namespace_holds_its_release() {
    if !util::runs("unshare", "--version") {
        return;
    }
    let root = DeployRoot::new();
    for r in ["1", "2"] {
        std::fs::create_dir_all(root.release(r).join("web")).expect("create web/");
    }
    let mnt: PathBuf = root.tmp().join("mnt");
    std::fs::create_dir_all(&mnt).expect("create mnt/");
    lifecycle(&root, "cwd", &|dir| {
        let script = format!(
            "mount --bind '{}' '{}' && cd '{}/web' && exec sleep 1000",
            dir.display(),
            mnt.display(),
            mnt.display()
        );
        let child = Child::spawn(
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(script)
                .current_dir("/"),
        );
        poll(
            "the namespaced worker to run sleep in the bind mount",
            || (comm(child.pid()).as_deref() == Some("sleep")).then_some(()),
        );
        child
    });
}

/// The namespaced worker of the test above in a Docker container's cgroup
/// (`system.slice/docker-ID.scope`): the finding names the container, and its remedy restarts
/// it (its bind mount of `current` is made again only then), whatever runs inside it.
#[test]
fn a_container_on_a_bind_of_current_is_restarted_as_a_container() {
    if !util::runs("unshare", "--version") {
        return;
    }
    let _lock = cgroup_lock();
    let id = format!(
        "{:064x}",
        u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    );
    let Some(cg) = Cgroup::create(true, &format!("system.slice/docker-{id}.scope")) else {
        return;
    };
    let root = DeployRoot::new();
    std::fs::create_dir_all(root.release("1").join("web")).expect("create web/");
    root.switch("1");
    let mnt = root.tmp().join("mnt");
    std::fs::create_dir_all(&mnt).expect("create mnt/");
    let script = format!(
        "mount --bind '{}' '{}' && cd '{}/web' && exec sleep 1000",
        root.current().display(),
        mnt.display(),
        mnt.display()
    );
    let worker = Child::spawn(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(script)
            .current_dir("/"),
    );
    poll("the namespaced worker to run sleep", || {
        (comm(worker.pid()).as_deref() == Some("sleep")).then_some(())
    });
    cg.add(worker.pid());
    root.release("2");
    root.switch("2");
    let (run, doc) = check_now(&root);
    let old = findings_of(&doc, "old-release");
    assert_eq!(old.len(), 1, "{run}");
    assert_eq!(pids(old[0]), [i64::from(worker.pid())], "{run}");
    assert_eq!(
        old[0]["remedy"].as_str(),
        Some(format!("docker restart {id}").as_str()),
        "{run}"
    );
    let p = process(&doc, worker.pid()).expect("the worker is listed");
    assert_eq!(p["owner"]["kind"], "docker", "{p}");
    drop(worker);
    drop(cg);
}

/// `--deep` reads every process, not only those the cheap pass could not place: a worker
/// whose cwd is the current release but that still maps a library of the old one is OK by
/// default (its cwd places it) and an `old-release` with `--deep`.
#[test]
fn deep_reads_a_process_its_cwd_already_placed() {
    if !util::runs("gcc", "--version") {
        return;
    }
    let root = DeployRoot::new();
    let bin = loader_and_libraries(&root);
    let r1 = root.release_path("1");
    let r2 = root.release_path("2");
    root.switch("2");
    let worker = mapping_ext(
        Command::new(&bin)
            .env("EXT", r1.join("lib/ext.so"))
            .current_dir(&r2),
    );
    let (run, _) = check_now(&root);
    assert_eq!(
        run.code, 0,
        "by default its cwd on the current release places it\n{run}"
    );
    let (run, doc) = check_json([
        root.path().as_os_str(),
        "--grace".as_ref(),
        "0s".as_ref(),
        "--deep".as_ref(),
    ]);
    assert_eq!(run.code, 1, "with --deep the old library is seen\n{run}");
    let hows = finding_for(&doc, "old-release", worker.pid(), &run);
    assert_eq!(
        hows.first().map(String::as_str),
        Some("mapped-file"),
        "{run}"
    );
}
