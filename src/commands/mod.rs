//! Commands: thin compositions of snapshot → layout → attribution → findings → report.
//! Each takes validated options and returns an exit code; none holds logic a rule should own.

pub mod check;
pub mod demo;
pub mod in_use;
pub mod plan;
pub mod wait;
pub mod watch;

/// An error that is the caller's fault (bad argument or config): exit 3 with its message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
