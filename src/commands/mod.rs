//! Commands: thin compositions of snapshot → layout → attribution → findings → report.
//! Each takes validated options and returns an exit code; none holds logic a rule should own.

pub mod check;
pub mod demo;
pub mod in_use;
pub mod wait;
pub mod watch;

pub use crate::settings::UsageError;
