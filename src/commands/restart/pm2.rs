//! A PM2 app on an old or deleted release is registered again from the app's link (the
//! remedy's [`crate::owner::remedy::Pm2Again`]: `pm2 delete NAME`, `pm2 start LINK/SCRIPT --name NAME --cwd LINK`,
//! `pm2 save`, as the God daemon's user): one action of three steps, run in order, stopping
//! at the first failure.
//!
//! Every step must reach the God daemon the scan saw, so each runs with that daemon's
//! `PM2_HOME`. Its title names it (`PM2 v5.4.3: God Daemon (/home/u/.pm2)`), but a title is
//! free text, and cut to the length of the daemon's first command line. So the home is what
//! the kernel says: the directory of the one `rpc.sock` the daemon itself listens on (a socket
//! its fds hold, bound at that path in `/proc/PID/net/unix`). Then `pm2 jlist` (as the
//! daemon's user, with that home) must list the app NAME with the scan's pid. Anything else is
//! skipped, with why.

use super::plan::Via;
use crate::escape::{escape_bytes, shell_word};
use crate::findings::{Finding, Remedy};
use crate::owner::remedy::{Arg, Command, Restart, TreeFix};
use crate::owner::Supervisor;
use crate::scan::Scan;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What the plan makes of a finding whose remedy registers a PM2 app again: `None` when it is
/// not one; else the steps and how to confirm them, or the steps (if any) and why not.
pub fn of(scan: &Scan, f: &Finding, top: i32) -> Option<Result<(Vec<Command>, Via), Skip>> {
    let Remedy::Restart(TreeFix::Restart {
        restart: Restart::Pm2Again(again),
        stale: None,
    }) = &f.remedy
    else {
        return None;
    };
    let steps = again.commands();
    let Some(script) = &again.script else {
        return Some(Err(Skip {
            steps,
            why: "PM2 does not say which script the app runs (no pm_exec_path, and its command line names none in a release), so only a person can start it again".into(),
        }));
    };
    let god = match scan.owners.get(top).map(|o| &o.supervisor) {
        Some(Supervisor::Pm2 { god, .. }) => *god,
        _ => return None,
    };
    match home_of(god) {
        Some(home) => Some(Ok((
            steps,
            Via::Pm2 {
                god,
                name: again.name.clone(),
                home,
                start: Path::new(&again.link).join(&**script),
            },
        ))),
        None => Some(Err(Skip {
            steps,
            why: format!(
                "PM2_HOME of God daemon pid {god} cannot be known safely: the kernel shows it listening on no one rpc.sock"
            ),
        })),
    }
}

/// A PM2 finding planned as skipped: its steps (shown), and why.
pub struct Skip {
    pub steps: Vec<Command>,
    pub why: String,
}

/// The `PM2_HOME` of the God daemon `god`: the directory of the one `rpc.sock` it listens on.
fn home_of(god: i32) -> Option<PathBuf> {
    let mut homes: Vec<PathBuf> = sockets_of(god)
        .into_iter()
        .filter(|p| p.file_name() == Some(OsStr::new("rpc.sock")))
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .filter(|home| home.is_absolute())
        .collect();
    homes.dedup();
    match homes.as_slice() {
        [home] => Some(home.clone()),
        _ => None,
    }
}

/// The environment every step runs with: the daemon's home.
pub fn env(via: &Via) -> Vec<(&'static str, std::ffi::OsString)> {
    match via {
        Via::Pm2 { home, .. } => vec![("PM2_HOME", home.clone().into_os_string())],
        _ => Vec::new(),
    }
}

/// The daemon listens on `HOME/rpc.sock`, and `pm2 jlist` there names the app with `top`.
pub fn confirm(
    ask: impl Fn(&Command, &[(&str, &OsStr)]) -> Result<String, String>,
    first: &Command,
    via: &Via,
    top: i32,
) -> Result<String, String> {
    let Via::Pm2 {
        god,
        name,
        home,
        start,
    } = via
    else {
        return Err("not a PM2 action".into());
    };
    // `pm2 delete` runs first: a start that cannot succeed would leave the app down.
    if !std::fs::metadata(start).is_ok_and(|m| m.is_file()) {
        return Err(format!(
            "{} is no file, so pm2 start would fail after pm2 delete took the app down",
            shell_word(start)
        ));
    }
    if home_of(*god).as_ref() != Some(home) {
        return Err(format!(
            "PM2_HOME cannot be known safely: God daemon pid {god} no longer listens on {}",
            shell_word(home.join("rpc.sock"))
        ));
    }
    let jlist = Command {
        as_whom: first.as_whom,
        ..Command::new("pm2", [Arg::Word("jlist")])
    };
    let out = ask(&jlist, &[("PM2_HOME", home.as_os_str())])?;
    let pids = app_pids(&out, name).ok_or_else(|| {
        // The list holds every app's environment: never quoted.
        "pm2 jlist answered no list of apps".to_string()
    })?;
    let app = shell_word(name);
    if pids.contains(&top) {
        return Ok(format!(
            "God daemon pid {god} (PM2_HOME={}) names pid {top} as app {app}",
            shell_word(home)
        ));
    }
    let said: Vec<String> = pids.iter().map(i32::to_string).collect();
    Err(format!(
        "pm2 jlist (PM2_HOME={}) names no app {app} with pid {top} (app {app}: pids [{}])",
        shell_word(home),
        escape_bytes(said.join(", ").as_bytes())
    ))
}

/// The pids `pm2 jlist` gives for the app `name` (its JSON is one line, maybe after
/// warnings); `None` when no line is a list.
fn app_pids(out: &str, name: &OsStr) -> Option<Vec<i32>> {
    let list = out.lines().find_map(|l| {
        let l = l.trim();
        l.starts_with('[')
            .then(|| serde_json::from_str::<Vec<serde_json::Value>>(l).ok())
            .flatten()
    })?;
    Some(
        list.iter()
            .filter(|app| app["name"].as_str().map(str::as_bytes) == Some(name.as_bytes()))
            .filter_map(|app| app["pid"].as_i64())
            .filter_map(|pid| i32::try_from(pid).ok())
            .collect(),
    )
}

/// The paths of the unix sockets `pid` holds (bound in its own network namespace's table).
fn sockets_of(pid: i32) -> Vec<PathBuf> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let held: Vec<Vec<u8>> = fds
        .flatten()
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            let inode = target
                .as_os_str()
                .as_bytes()
                .strip_prefix(b"socket:[")?
                .strip_suffix(b"]")?
                .to_vec();
            Some(inode)
        })
        .collect();
    let Ok(table) = std::fs::read(format!("/proc/{pid}/net/unix")) else {
        return Vec::new();
    };
    table
        .split(|&c| c == b'\n')
        .filter_map(|line| {
            let fields: Vec<&[u8]> = line
                .split(|&c| c == b' ')
                .filter(|f| !f.is_empty())
                .collect();
            match fields.as_slice() {
                // Num RefCount Protocol Flags Type St Inode Path
                [_, _, _, _, _, _, inode, path] if held.iter().any(|h| h == inode) => {
                    Some(PathBuf::from(OsStr::from_bytes(path)))
                }
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pids_of_one_app_in_a_jlist() {
        let out = "[PM2] warning\n[{\"name\":\"api\",\"pid\":12,\"pm2_env\":{\"SECRET\":\"x\"}},{\"name\":\"api\",\"pid\":13},{\"name\":\"other\",\"pid\":14}]\n";
        assert_eq!(app_pids(out, OsStr::new("api")), Some(vec![12, 13]));
        assert_eq!(app_pids(out, OsStr::new("nope")), Some(vec![]));
        assert_eq!(app_pids("[PM2] no daemon\n", OsStr::new("api")), None);
    }

    #[test]
    fn the_home_of_a_process_that_listens_on_an_rpc_sock() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let me = i32::try_from(std::process::id()).unwrap_or(0);
        assert_eq!(home_of(me), None, "no rpc.sock held");
        let _listener =
            std::os::unix::net::UnixListener::bind(dir.path().join("rpc.sock")).expect("bind");
        assert_eq!(home_of(me).as_deref(), Some(dir.path()));
    }
}
