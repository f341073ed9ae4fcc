//! `relwatch demo`: the incident relwatch exists for, played out in a throwaway deploy root,
//! then checked and explained. It needs nothing but the binary: the "master" and "workers" are
//! relwatch itself re-run as hidden `__demo-process` children (our own executable, never a path
//! taken from another process), each with PR_SET_PDEATHSIG so nothing outlives the demo. Its
//! processes are ended by pid and its directory removed when it ends, also on Ctrl-C.

use crate::cli::{CheckArgs, ColorChoice, Format, RootsArgs, ScanArgs};
use crate::exit::ExitCode;
use nix::sys::signal::{SigSet, Signal};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// What the demo started and made, so both the normal end and Ctrl-C can undo it.
#[derive(Default)]
struct Cleanup {
    children: Vec<Child>,
    dir: Option<tempfile::TempDir>,
}

impl Cleanup {
    fn run(&mut self) -> Vec<i32> {
        let mut ended = Vec::new();
        for child in &mut self.children {
            let pid = child.id() as i32;
            // Workers first (they are the master's children), then the master.
            for w in children_of(pid) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(w), Signal::SIGKILL);
                ended.push(w);
            }
            let _ = child.kill();
            let _ = child.wait();
            ended.push(pid);
        }
        self.children.clear();
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
        ended
    }
}

fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect()
}

/// The hidden child: a master starts two workers; both wait to be killed.
pub fn process(role: &str) -> anyhow::Result<ExitCode> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    let mut workers = Vec::new();
    if role == "master" {
        let exe = std::env::current_exe()?;
        for _ in 0..2 {
            workers.push(
                Command::new(&exe)
                    .arg0("queue-worker")
                    .args(["__demo-process", "worker"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .spawn()?,
            );
        }
    }
    loop {
        nix::unistd::pause();
    }
}

fn deploy(root: &Path, name: &str, out: &mut dyn Write) -> anyhow::Result<PathBuf> {
    let release = root.join("releases").join(name);
    std::fs::create_dir_all(&release)?;
    std::fs::write(release.join("worker.php"), "<?php // the app\n")?;
    let tmp = root.join(format!("current.tmp-{name}"));
    std::os::unix::fs::symlink(format!("releases/{name}"), &tmp)?;
    std::fs::rename(&tmp, root.join("current"))?;
    writeln!(out, "  deploy {name}: made releases/{name}, switched current -> releases/{name} (ln -s + mv -T)")?;
    Ok(release)
}

fn start(root: &Path, name: &str, role: &str) -> anyhow::Result<Child> {
    Ok(Command::new(std::env::current_exe()?)
        .arg0(name)
        .args(["__demo-process", role])
        // From current/: the kernel resolves the link once, at chdir.
        .current_dir(root.join("current"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?)
}

fn wait_for_children(pid: i32, n: usize) -> Vec<i32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let c = children_of(pid);
        if c.len() >= n || std::time::Instant::now() > deadline {
            return c;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

pub fn run(out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let cleanup = Arc::new(Mutex::new(Cleanup::default()));
    // Ctrl-C or SIGTERM: clean up, then leave with the conventional status.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block()?;
    {
        let cleanup = cleanup.clone();
        std::thread::spawn(move || {
            if let Ok(sig) = signals.wait() {
                if let Ok(mut c) = cleanup.lock() {
                    c.run();
                }
                say!("relwatch demo: interrupted by {sig}; ended its processes and removed its directory");
                std::process::exit(128 + sig as i32);
            }
        });
    }
    let result = play(&cleanup, out);
    let ended = cleanup.lock().map(|mut c| c.run()).unwrap_or_default();
    writeln!(
        out,
        "\nrelwatch demo: ended pids {} and removed the deploy root.",
        ended
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    result
}

fn play(cleanup: &Arc<Mutex<Cleanup>>, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new()
        .prefix("relwatch-demo-")
        .tempdir()?;
    let root = dir.path().join("shop");
    std::fs::create_dir_all(root.join("shared"))?;
    if let Ok(mut c) = cleanup.lock() {
        c.dir = Some(dir);
    }
    let add = |child: Child| -> i32 {
        let pid = child.id() as i32;
        if let Ok(mut c) = cleanup.lock() {
            c.children.push(child);
        }
        pid
    };
    writeln!(
        out,
        "relwatch demo: a throwaway deploy root at {}\n",
        root.display()
    )?;
    deploy(&root, "1", out)?;
    let master = add(start(&root, "queue-master", "master")?);
    let workers = wait_for_children(master, 2);
    writeln!(
        out,
        "  started queue-master (pid {master}) from current/, with workers {workers:?}"
    )?;
    deploy(&root, "2", out)?;
    let straggler = add(start(&root, "queue-worker", "worker")?);
    writeln!(
        out,
        "  started queue-worker (pid {straggler}) from current/"
    )?;
    deploy(&root, "3", out)?;
    writeln!(
        out,
        "  the deploy \"restarted the queue\" but only its workers: nothing restarted queue-master or pid {straggler}"
    )?;
    std::fs::remove_dir_all(root.join("releases/1"))?;
    writeln!(
        out,
        "  cleanup: rm -rf releases/1 (keeping the 2 newest), as a deploy's cleanup step does"
    )?;
    writeln!(out, "\n$ relwatch check {} --grace 0s\n", root.display())?;
    let code = check(&root, out)?;
    explain(master, straggler, out)?;
    Ok(if code == ExitCode::Critical {
        ExitCode::Ok
    } else {
        writeln!(
            out,
            "\nrelwatch demo: expected CRITICAL, got {}: please report this",
            code.label()
        )?;
        ExitCode::Warning
    })
}

/// `relwatch check ROOT --grace 0s`, the command the demo shows.
fn check(root: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let args = CheckArgs {
        format: Format::Text,
        grace: Some(std::time::Duration::ZERO),
        roots: RootsArgs {
            roots: vec![root.to_path_buf()],
            config: None,
            discover: Vec::new(),
        },
        color: ColorChoice::Auto,
        output: None,
        scan: ScanArgs {
            jobs: None,
            deadline: crate::watchdog::DEFAULT,
            deep: false,
        },
    };
    super::check::run(&args, out)
}

/// What each line of the report says, with the demo's own pids.
fn explain(master: i32, straggler: i32, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "\nWhat it says:
  - The first line is the verdict and the exit code a monitor sees: CRITICAL (2).
  - deleted-release: queue-master (pid {master}) resolved current to releases/1 when it started,
    and kept that directory as its cwd. The cleanup deleted releases/1, so every worker it spawns
    from now on fails to find its files, while the master itself looks healthy. relwatch knows it
    from the link count of the master's cwd (0: deleted), not from the text \" (deleted)\".
    It is one finding for the master and its workers, and one fix ends them all (workers would
    outlive their master) before the master starts again from current.
  - old-release: pid {straggler} started from current/ while it pointed at releases/2, and runs
    release 2 still. With --grace 0s that is a warning at once; by default only 5 minutes after
    the switch, the time a deploy takes to restart its workers.
  - owner: nothing supervises these demo processes, so the fix is a kill -TERM and a start from
    current. Under systemd, supervisord, PM2 or runit it names the unit or program instead
    (systemctl restart UNIT, supervisorctl restart GROUP:NAME, sv restart NAME; a PM2 app is
    registered again from current). `relwatch restart ROOT` runs such fixes for you.
  - The release lines count the processes on each release; deleted ones are marked.
  - Try `relwatch ps ROOT` for the tree view, `--format json` for scripts, and `relwatch wait`
    and `relwatch in-use` in your deploy hooks (see the README)."
    )
}
