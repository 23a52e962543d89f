//! Calling a job through the ABI: JSON bytes in, JSON out, and what the plugin may call back
//! (wait, emit, log) while the job runs.

use std::ffi::c_void;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::AtomicU32;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use weft_plugin_abi as abi;

use crate::cancel::CancelFlag;

/// The largest output or error a job may hand back, in bytes. Past it the job fails, and
/// the bytes are never copied.
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024 * 1024;

/// The level of a plugin's log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
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

impl LogLevel {
    fn from_code(code: u32) -> Self {
        match code {
            abi::LOG_ERROR => Self::Error,
            abi::LOG_WARN => Self::Warn,
            abi::LOG_INFO => Self::Info,
            abi::LOG_DEBUG => Self::Debug,
            _ => Self::Trace,
        }
    }
}

/// Everything a call needs besides the input.
pub struct CallOptions<'a> {
    /// The job's cancellation.
    pub cancel: &'a CancelFlag,
    /// How long this attempt may take, if it is limited.
    pub timeout: Option<Duration>,
    /// How long a cancelled job has to stop.
    pub grace: Duration,
    /// The attempt, from 1.
    pub attempt: u32,
    /// The run's id.
    pub run_id: &'a str,
    /// The stage's id.
    pub stage_id: &'a str,
    /// The item's index in a fan-out.
    pub index: Option<u64>,
    /// Where the plugin's log lines go.
    pub log: &'a (dyn Fn(LogLevel, &str) + Sync),
}

/// How a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The job returned an error.
    Error,
    /// The job stopped because it was cancelled.
    Cancelled,
    /// The job panicked.
    Panicked,
    /// The input did not match the job's input type.
    BadInput,
    /// The job's output was not UTF-8 JSON, was too large, or was missing.
    InvalidOutput,
}

/// A failed call: what the plugin said, or what the host found wrong with its answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// How it failed.
    pub kind: FailureKind,
    /// What went wrong.
    pub message: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// Structured details from the plugin.
    pub details: Option<Value>,
}

impl Failure {
    fn invalid_output(message: String) -> Self {
        Self {
            kind: FailureKind::InvalidOutput,
            message,
            retryable: false,
            details: None,
        }
    }
}

/// What the plugin handed back during the call.
#[derive(Default)]
struct Emitted {
    output: Option<Result<Vec<u8>, usize>>,
    error: Option<Result<Vec<u8>, usize>>,
}

/// The host's side of one call, which the callbacks reach through `host`.
struct HostCall<'a> {
    options: &'a CallOptions<'a>,
    emitted: Mutex<Emitted>,
}

/// How a call's output is read: parsed into a tree, or checked and kept as text.
pub(crate) type ReadOutput<T> = fn(String) -> Result<T, serde_json::Error>;

/// Calls a job's entry with `input` (UTF-8 JSON); `read` turns the output's text into `T`.
///
/// # Safety
///
/// `call` and `data` come from a loaded plugin's descriptor that passed the host's checks.
pub(crate) unsafe fn call<T>(
    call: abi::JobFn,
    data: *const c_void,
    input: &[u8],
    options: &CallOptions<'_>,
    read: ReadOutput<T>,
) -> Result<T, Failure> {
    let host = HostCall {
        options,
        emitted: Mutex::new(Emitted::default()),
    };
    let deadline_ns = options.timeout.map_or(abi::NO_DEADLINE, |timeout| {
        u64::try_from(timeout.as_nanos()).unwrap_or(abi::NO_DEADLINE - 1)
    });
    let context = abi::CallContext {
        size: size_of::<abi::CallContext<'_>>(),
        cancel: (&options.cancel.flag as *const AtomicU32),
        deadline_ns,
        grace_ns: u64::try_from(options.grace.as_nanos()).unwrap_or(u64::MAX),
        attempt: options.attempt,
        run_id: abi::Bytes::from_str(options.run_id),
        stage_id: abi::Bytes::from_str(options.stage_id),
        index: options.index.unwrap_or(abi::NO_INDEX),
        host: (&host as *const HostCall<'_>).cast::<c_void>(),
        wait: host_wait,
        emit: host_emit,
        log: host_log,
    };

    // SAFETY: the descriptor passed the host's checks; `context` and `input` outlive the
    // call; the callbacks only read `host` while the call runs.
    let status = unsafe { call(data, &context, abi::Bytes::new(input)) };

    let emitted = host
        .emitted
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    outcome(status, emitted, read)
}

fn outcome<T>(status: i32, emitted: Emitted, read: ReadOutput<T>) -> Result<T, Failure> {
    if status == abi::STATUS_OK {
        return match emitted.output {
            Some(Ok(bytes)) => read_output(bytes, read),
            Some(Err(size)) => Err(too_large("output", size)),
            None => Err(Failure::invalid_output(
                "the job reported success but handed back no output".to_owned(),
            )),
        };
    }

    let kind = match status {
        abi::STATUS_CANCELLED => FailureKind::Cancelled,
        abi::STATUS_PANICKED => FailureKind::Panicked,
        abi::STATUS_BAD_INPUT => FailureKind::BadInput,
        abi::STATUS_ERROR => FailureKind::Error,
        other => {
            return Err(Failure::invalid_output(format!(
                "the job returned the unknown status code {other}"
            )));
        }
    };
    let mut failure = match emitted.error {
        Some(Ok(bytes)) => parse_error(&bytes),
        Some(Err(size)) => too_large("error", size),
        None => Failure {
            kind,
            message: "the job failed without saying why".to_owned(),
            retryable: true,
            details: None,
        },
    };
    failure.kind = kind;
    if kind != FailureKind::Error {
        failure.retryable = false;
    }
    Err(failure)
}

fn read_output<T>(bytes: Vec<u8>, read: ReadOutput<T>) -> Result<T, Failure> {
    let text = String::from_utf8(bytes).map_err(|error| {
        Failure::invalid_output(format!(
            "the job's output is not UTF-8: invalid byte at offset {}",
            error.utf8_error().valid_up_to()
        ))
    })?;
    read(text)
        .map_err(|error| Failure::invalid_output(format!("the job's output is not JSON: {error}")))
}

fn parse_error(bytes: &[u8]) -> Failure {
    #[derive(serde::Deserialize)]
    struct Wire {
        message: String,
        #[serde(default = "yes")]
        retryable: bool,
        #[serde(default)]
        details: Option<Value>,
    }
    fn yes() -> bool {
        true
    }

    match serde_json::from_slice::<Wire>(bytes) {
        Ok(wire) => Failure {
            kind: FailureKind::Error,
            message: wire.message,
            retryable: wire.retryable,
            details: wire.details,
        },
        Err(_) => Failure {
            kind: FailureKind::Error,
            message: format!(
                "the job failed with an error that is not `{{message, retryable, details}}` JSON: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ),
            retryable: false,
            details: None,
        },
    }
}

fn too_large(what: &str, size: usize) -> Failure {
    Failure::invalid_output(format!(
        "the job's {what} is {:.1} MiB, more than the limit of {} MiB",
        size as f64 / (1024.0 * 1024.0),
        MAX_OUTPUT_BYTES / (1024 * 1024)
    ))
}

/// Reaches the call's host state from a callback.
///
/// # Safety
///
/// `host` is the pointer the host put in the context of a call that is still running.
unsafe fn host_call<'a>(host: *const c_void) -> &'a HostCall<'a> {
    // SAFETY: the caller promises `host` points to the live `HostCall` of this call.
    unsafe { &*host.cast::<HostCall<'a>>() }
}

unsafe extern "C" fn host_wait(host: *const c_void, timeout_ns: u64) -> i32 {
    // SAFETY: the plugin calls back with the `host` of its running call.
    let host = unsafe { host_call(host) };
    let cancelled = host.options.cancel.wait(Duration::from_nanos(timeout_ns));
    i32::from(cancelled)
}

unsafe extern "C" fn host_emit(host: *const c_void, kind: u32, bytes: abi::Bytes<'_>) {
    // SAFETY: the plugin calls back with the `host` of its running call.
    let host = unsafe { host_call(host) };
    let copied = if bytes.len > MAX_OUTPUT_BYTES {
        Err(bytes.len)
    } else {
        // SAFETY: the plugin's bytes are valid until this callback returns; they are copied.
        Ok(unsafe { bytes.as_slice() }.to_vec())
    };
    let mut emitted = host.emitted.lock().unwrap_or_else(PoisonError::into_inner);
    match kind {
        abi::EMIT_OUTPUT => emitted.output = Some(copied),
        _ => emitted.error = Some(copied),
    }
}

unsafe extern "C" fn host_log(host: *const c_void, level: u32, message: abi::Bytes<'_>) {
    // SAFETY: the plugin calls back with the `host` of its running call.
    let host = unsafe { host_call(host) };
    // SAFETY: the plugin's bytes are valid until this callback returns.
    let message = String::from_utf8_lossy(unsafe { message.as_slice() });
    // A panic must not unwind into the plugin's frames: the line is lost instead.
    let _ = panic::catch_unwind(AssertUnwindSafe(|| {
        (host.options.log)(LogLevel::from_code(level), &message);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: String) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&text)
    }

    #[test]
    fn success_without_output_is_a_failure() {
        let failure = outcome(abi::STATUS_OK, Emitted::default(), parse).unwrap_err();
        assert_eq!(failure.kind, FailureKind::InvalidOutput);
    }

    #[test]
    fn invalid_utf8_output_is_reported() {
        let emitted = Emitted {
            output: Some(Ok(vec![b'"', 0xff, b'"'])),
            error: None,
        };
        let failure = outcome(abi::STATUS_OK, emitted, parse).unwrap_err();
        assert_eq!(
            failure.message,
            "the job's output is not UTF-8: invalid byte at offset 1"
        );
    }

    #[test]
    fn errors_keep_the_plugins_retryable_flag() {
        let emitted = Emitted {
            output: None,
            error: Some(Ok(br#"{"message":"nope","retryable":false}"#.to_vec())),
        };
        let failure = outcome(abi::STATUS_ERROR, emitted, parse).unwrap_err();
        assert_eq!(
            (failure.message.as_str(), failure.retryable),
            ("nope", false)
        );
    }
}
