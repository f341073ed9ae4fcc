//! The scan deadline: a scan that does not end in time ends the run with UNKNOWN (exit 3).
//!
//! A scan asks the kernel about every process's cwd and exe, and about the deploy roots. The
//! identity of a cwd is asked so that no file system is consulted (see
//! `snapshot::linux::identity_of`), yet a deploy root on a stalled NFS or FUSE mount, or a kernel
//! that blocks elsewhere, could still stop a scan. A monitor that never answers is worse than
//! one that says it could not look: after `--deadline` this watchdog writes the run's error
//! document (the format and file the command line asked for) and exits 3.
//!
//! A command arms it around each scan ([`arm`]); nothing is armed where it was never installed
//! (library tests, `demo`).

use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};

use crate::cli::ErrorOutput;

/// The deadline when the command line names none.
pub const DEFAULT: Duration = Duration::from_secs(60);

static INSTALLED: OnceLock<Watchdog> = OnceLock::new();

struct Watchdog {
    limit: Duration,
    deadline: Arc<(Mutex<Option<Instant>>, Condvar)>,
}

/// Start the watchdog of this run, once: a scan armed with [`arm`] that lasts longer than
/// `limit` ends the process with the error document `to` asks for and exit 3.
pub fn install(limit: Duration, to: ErrorOutput) {
    let deadline = Arc::new((Mutex::new(None::<Instant>), Condvar::new()));
    let watched = deadline.clone();
    if INSTALLED.set(Watchdog { limit, deadline }).is_err() {
        return;
    }
    // Born with every signal blocked (a thread inherits its creator's mask): a signal the
    // commands take on their own (`watch` and `wait` read SIGTERM from a signalfd) must never
    // be delivered here, where its default action would end the run.
    let all = SigSet::all();
    let mut before = SigSet::empty();
    let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&all), Some(&mut before));
    let spawned = std::thread::Builder::new()
        .name("relwatch-watchdog".into())
        .spawn(move || watch(&watched, limit, &to));
    if blocked.is_ok() {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&before), None);
    }
    if let Err(e) = spawned {
        say!("relwatch: warning: no scan deadline (cannot start its thread: {e})");
    }
}

fn watch(deadline: &(Mutex<Option<Instant>>, Condvar), limit: Duration, to: &ErrorOutput) {
    let (lock, wake) = deadline;
    let mut armed = lock.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        match *armed {
            None => armed = wake.wait(armed).unwrap_or_else(PoisonError::into_inner),
            Some(at) => {
                let now = Instant::now();
                if now >= at {
                    fire(limit, to);
                }
                armed = wake
                    .wait_timeout(armed, at - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
    }
}

/// The scan is late: say so where the report would have gone, and end the run.
fn fire(limit: Duration, to: &ErrorOutput) -> ! {
    let message = crate::report::words::deadline_missed(limit);
    say!("relwatch: error: {message}");
    crate::commands::write_error_unlocked(to, &message);
    std::process::exit(i32::from(crate::exit::ExitCode::Unknown as u8));
}

/// While the returned guard lives, the installed watchdog (if any) ends the run when `limit`
/// passes. Guards nest: dropping one restores the deadline it replaced.
#[must_use = "the deadline holds only while the guard lives"]
pub fn arm() -> Armed {
    let Some(dog) = INSTALLED.get() else {
        return Armed { previous: None };
    };
    let (lock, wake) = &*dog.deadline;
    let mut armed = lock.lock().unwrap_or_else(PoisonError::into_inner);
    let previous = armed.replace(Instant::now() + dog.limit);
    wake.notify_one();
    Armed {
        previous: Some(previous),
    }
}

/// A scan under the deadline (see [`arm`]).
pub struct Armed {
    /// The deadline this guard replaced; `None` when no watchdog is installed.
    previous: Option<Option<Instant>>,
}

impl Drop for Armed {
    fn drop(&mut self) {
        let (Some(previous), Some(dog)) = (self.previous, INSTALLED.get()) else {
            return;
        };
        let (lock, wake) = &*dog.deadline;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = previous;
        wake.notify_one();
    }
}
