//! The exit codes of `weft`, in one place.

use std::process::ExitCode;

/// The run (or check) succeeded.
pub const SUCCESS: u8 = 0;
/// The run failed: a stage failed, fail-fast, or the run's timeout.
pub const FAILED: u8 = 1;
/// The workflow, an input or the command line is invalid.
pub const INVALID: u8 = 2;
/// Interrupted by SIGINT (Ctrl-C).
pub const INTERRUPTED: u8 = 130;
/// Stopped by SIGTERM.
pub const TERMINATED: u8 = 143;

/// The process exit code for one of the codes above.
pub fn code(value: u8) -> ExitCode {
    ExitCode::from(value)
}
