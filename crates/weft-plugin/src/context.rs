//! What a job sees of the engine during one call: cancellation, deadline, attempt, logging.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use weft_plugin_abi as abi;

use crate::JobError;

/// The level of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed.
    Error,
    /// Something looks wrong.
    Warn,
    /// What the job is doing.
    Info,
    /// Detail for debugging.
    Debug,
    /// Fine detail.
    Trace,
}

impl Level {
    pub(crate) fn code(self) -> u32 {
        match self {
            Self::Error => abi::LOG_ERROR,
            Self::Warn => abi::LOG_WARN,
            Self::Info => abi::LOG_INFO,
            Self::Debug => abi::LOG_DEBUG,
            Self::Trace => abi::LOG_TRACE,
        }
    }
}

/// The engine's side of one call of a job.
///
/// It borrows the call's context: it is only valid inside [`crate::Job::run`].
pub struct JobContext<'a> {
    raw: &'a abi::CallContext<'a>,
    deadline: Option<Instant>,
}

impl<'a> JobContext<'a> {
    pub(crate) fn new(raw: &'a abi::CallContext<'a>) -> Self {
        let deadline = (raw.deadline_ns != abi::NO_DEADLINE)
            .then(|| Instant::now() + Duration::from_nanos(raw.deadline_ns));
        Self { raw, deadline }
    }

    /// Whether the job has been cancelled: by a failure elsewhere, a timeout or the user.
    pub fn is_cancelled(&self) -> bool {
        // SAFETY: the host keeps the flag alive for the whole call, and `self` cannot outlive
        // the call.
        unsafe { (*self.raw.cancel).load(Ordering::Relaxed) != 0 }
    }

    /// `Err(JobError::cancelled())` once the job is cancelled, for use with `?`.
    pub fn check(&self) -> Result<(), JobError> {
        if self.is_cancelled() {
            Err(JobError::cancelled())
        } else {
            Ok(())
        }
    }

    /// Sleeps for `duration`, waking at once when the job is cancelled (then returns
    /// `Err(JobError::cancelled())`).
    pub fn sleep(&self, duration: Duration) -> Result<(), JobError> {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX - 1);
        // SAFETY: `wait` and `host` come from the host for this call, which is still going.
        let cancelled = unsafe { (self.raw.wait)(self.raw.host, nanos) };
        if cancelled != 0 {
            Err(JobError::cancelled())
        } else {
            Ok(())
        }
    }

    /// When this attempt times out, if it has a timeout.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// How long a cancelled job has before the engine abandons it.
    pub fn grace(&self) -> Duration {
        Duration::from_nanos(self.raw.grace_ns)
    }

    /// The attempt, from 1.
    pub fn attempt(&self) -> u32 {
        self.raw.attempt
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        // SAFETY: the host's bytes live for the call.
        text(unsafe { self.raw.run_id.as_slice() })
    }

    /// The stage's id.
    pub fn stage_id(&self) -> &str {
        // SAFETY: the host's bytes live for the call.
        text(unsafe { self.raw.stage_id.as_slice() })
    }

    /// The item's index in a fan-out; `None` for a single job.
    pub fn index(&self) -> Option<u64> {
        (self.raw.index != abi::NO_INDEX).then_some(self.raw.index)
    }

    /// Writes a log line to the engine's log, tagged with the run, stage and item.
    pub fn log(&self, level: Level, message: &str) {
        log_raw(self.raw, level, message);
    }

    /// Writes an error line to the engine's log.
    pub fn error(&self, message: &str) {
        self.log(Level::Error, message);
    }

    /// Writes a warning to the engine's log.
    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message);
    }

    /// Writes an information line to the engine's log.
    pub fn info(&self, message: &str) {
        self.log(Level::Info, message);
    }

    /// Writes a debugging line to the engine's log.
    pub fn debug(&self, message: &str) {
        self.log(Level::Debug, message);
    }

    /// Writes a line of fine detail to the engine's log.
    pub fn trace(&self, message: &str) {
        self.log(Level::Trace, message);
    }
}

/// Sends a log line through the host's callback.
pub(crate) fn log_raw(raw: &abi::CallContext<'_>, level: Level, message: &str) {
    // SAFETY: `log` and `host` come from the host for a call that is still going; the host
    // copies the bytes before it returns.
    unsafe { (raw.log)(raw.host, level.code(), abi::Bytes::from_str(message)) };
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or("?")
}
