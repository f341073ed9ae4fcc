//! Exit codes: the monitoring-plugin convention, owned by one type.
//!
//! 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Nagios, Icinga, Sensu and Telegraf read these, and
//! so do deploy hooks. A bad argument or config is UNKNOWN: relwatch could not answer.

use crate::findings::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitCode {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl ExitCode {
    /// The exit code for the worst severity found. A critical finding outranks "unknown": when
    /// relwatch already sees something critical, that is the answer, even if it could not see
    /// everything.
    pub fn from_worst(worst: Option<Severity>) -> ExitCode {
        match worst {
            None | Some(Severity::Info) => ExitCode::Ok,
            Some(Severity::Warning) => ExitCode::Warning,
            Some(Severity::Unknown) => ExitCode::Unknown,
            Some(Severity::Critical) => ExitCode::Critical,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ExitCode::Ok => "OK",
            ExitCode::Warning => "WARNING",
            ExitCode::Critical => "CRITICAL",
            ExitCode::Unknown => "UNKNOWN",
        }
    }

    /// The status in JSON: the label in lower case.
    pub fn name(self) -> &'static str {
        match self {
            ExitCode::Ok => "ok",
            ExitCode::Warning => "warning",
            ExitCode::Critical => "critical",
            ExitCode::Unknown => "unknown",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(c.code())
    }
}
