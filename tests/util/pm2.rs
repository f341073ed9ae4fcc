//! A test's own PM2: a God daemon with a `PM2_HOME` of its own, ended (`pm2 kill`, then by its
//! pid) when the guard drops, even when the test fails. Shared by tests/appservers.rs (PM2 from
//! npm in a temp prefix) and tests/restart.rs (the `pm2` on the system PATH, which relwatch
//! runs).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Ends the PM2 God daemon of a test's PM2_HOME (`pm2 kill`), and by pid if it is still there.
pub struct Pm2Home {
    pub pm2: PathBuf,
    /// `PM2_HOME`, and `PATH` when `pm2` is not on the system's.
    pub env: Vec<(&'static str, OsString)>,
    pub home: PathBuf,
    /// The uid the daemon (and every `pm2` of the test) runs as; root when `None`.
    pub uid: Option<u32>,
}

impl Pm2Home {
    /// `pm2` with `PM2_HOME=home` and `PATH=path`.
    pub fn new(pm2: PathBuf, home: PathBuf, path: OsString) -> Pm2Home {
        Pm2Home {
            pm2,
            env: vec![("PM2_HOME", home.clone().into()), ("PATH", path)],
            home,
            uid: None,
        }
    }

    /// Every `pm2` (so the daemon) as `uid` (through `setpriv`, no supplementary groups), with
    /// `HOME` the directory of its `PM2_HOME`, which it must own.
    pub fn with_uid(mut self, uid: u32) -> Pm2Home {
        let home = self.home.parent().unwrap_or(Path::new("/")).to_path_buf();
        self.env.push(("HOME", home.into()));
        self.uid = Some(uid);
        self
    }

    /// `pm2` as the test's uid.
    fn command(&self) -> Command {
        let mut cmd = match self.uid {
            None => Command::new(&self.pm2),
            Some(uid) => {
                let mut cmd = Command::new("setpriv");
                cmd.args([
                    format!("--reuid={uid}"),
                    format!("--regid={uid}"),
                    "--clear-groups".into(),
                ])
                .arg(&self.pm2);
                cmd
            }
        };
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// `pm2 ARGS` in `cwd`, which must succeed.
    pub fn run(&self, args: &[&OsStr], cwd: &Path) {
        let status = self
            .command()
            .args(args)
            .current_dir(cwd)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("run pm2 {args:?}: {e}"));
        assert!(status.success(), "pm2 {args:?}: {status}");
    }

    /// Start the daemon from `/` (`pm2 ping`: it is no app's), then the app the usual way:
    /// `pm2 start SCRIPT --name NAME` in `cwd` (an app's release, through `current`).
    pub fn start_from(&self, script: &str, name: &str, cwd: &Path) {
        self.run(&["ping".as_ref()], Path::new("/"));
        self.run(
            &[
                "start".as_ref(),
                script.as_ref(),
                "--name".as_ref(),
                name.as_ref(),
            ],
            cwd,
        );
    }

    /// The God daemon's pid, from its pid file.
    pub fn god(&self) -> Option<i32> {
        std::fs::read_to_string(self.home.join("pm2.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Pm2Home {
    fn drop(&mut self) {
        let god = self.god();
        let _ = self
            .command()
            .arg("kill")
            .current_dir("/")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(pid) = god.filter(|&p| p > 1) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}
