//! Deploy roots that appear after the agent started: it is often provisioned before the first
//! deploy. When its roots come from discovery (no ROOT named, no apps in the config), the
//! places are searched again at most once per full-rescan interval, before a scan, and each
//! new root is added (the others keep their place: findings and restart history are kept by
//! root index).

use crate::cli::RootsArgs;
use crate::escape::escape;
use crate::layout::DeployRoot;
use crate::settings::{AppSettings, Plan};
use std::time::{Duration, Instant};

/// When and how to search again.
pub(super) struct Rediscover<'a> {
    args: &'a RootsArgs,
    grace: Option<Duration>,
    every: Duration,
    last: Instant,
}

impl<'a> Rediscover<'a> {
    /// `Some` when `plan` came from discovery.
    pub(super) fn of(
        plan: &Plan,
        args: &'a RootsArgs,
        grace: Option<Duration>,
        every: Duration,
    ) -> Option<Self> {
        plan.searched.as_ref().map(|_| Rediscover {
            args,
            grace,
            every,
            last: Instant::now(),
        })
    }

    /// The roots found now that `known` does not hold, with their settings, when a search is
    /// due at `now` (else none). A search that fails is said and tried again next time.
    pub(super) fn new_roots(
        &mut self,
        known: &[DeployRoot],
        now: Instant,
        say: &mut dyn FnMut(String),
    ) -> Vec<(DeployRoot, AppSettings)> {
        if now.duration_since(self.last) < self.every {
            return Vec::new();
        }
        self.last = now;
        let plan = match super::super::plan(self.args, self.grace) {
            Ok(plan) => plan,
            Err(e) => {
                say(format!("searching for deploy roots again failed: {e}"));
                return Vec::new();
            }
        };
        let found: Vec<(DeployRoot, AppSettings)> = plan
            .roots
            .into_iter()
            .zip(plan.settings.apps)
            .filter(|(r, _)| !known.iter().any(|k| k.link == r.link))
            .collect();
        for (r, _) in &found {
            say(format!("found a new deploy root: {}", escape(&r.root)));
        }
        found
    }
}
