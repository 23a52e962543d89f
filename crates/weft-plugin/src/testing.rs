//! Calling a job in a unit test, through the same shim the engine uses, without an engine.
//!
//! ```
//! # use weft_plugin::{Job, JobContext, JobError};
//! # #[derive(Default)] struct Double;
//! # impl Job for Double {
//! #     const NAME: &'static str = "double";
//! #     const DESCRIPTION: &'static str = "Doubles a number.";
//! #     type Input = i64;
//! #     type Output = i64;
//! #     fn run(&self, _: &JobContext<'_>, input: i64) -> Result<i64, JobError> { Ok(input * 2) }
//! # }
//! use weft_plugin::testing::TestCall;
//!
//! let output = TestCall::new().run(&Double, serde_json::json!(21)).unwrap();
//! assert_eq!(output, serde_json::json!(42));
//! ```

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_plugin_abi as abi;

use crate::context::Level;
use crate::{Job, JobError};

/// One call of a job in a test: set the attempt, a timeout, or a cancellation, then [`run`].
///
/// [`run`]: TestCall::run
#[derive(Debug)]
pub struct TestCall {
    attempt: u32,
    timeout: Option<Duration>,
    grace: Duration,
    cancelled: bool,
    index: Option<u64>,
    logs: Mutex<Vec<(Level, String)>>,
    emitted: Mutex<Emitted>,
    cancel: AtomicU32,
}

/// The output and the error a job handed back, as JSON bytes.
#[derive(Debug, Default)]
struct Emitted {
    output: Option<Vec<u8>>,
    error: Option<Vec<u8>>,
}

impl Default for TestCall {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCall {
    /// A first attempt, without timeout or cancellation.
    pub fn new() -> Self {
        Self {
            attempt: 1,
            timeout: None,
            grace: Duration::from_secs(10),
            cancelled: false,
            index: None,
            logs: Mutex::new(Vec::new()),
            emitted: Mutex::new(Emitted::default()),
            cancel: AtomicU32::new(0),
        }
    }

    /// Sets the attempt number (from 1).
    #[must_use]
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// Sets the attempt's timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the grace period.
    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sets the fan-out index.
    #[must_use]
    pub fn index(mut self, index: u64) -> Self {
        self.index = Some(index);
        self
    }

    /// Starts the call already cancelled.
    #[must_use]
    pub fn cancelled(mut self) -> Self {
        self.cancelled = true;
        self
    }

    /// Cancels the call: from another thread while [`TestCall::run`] runs, as the engine
    /// would.
    ///
    /// ```
    /// # use weft_plugin::testing::TestCall;
    /// # use std::time::Duration;
    /// let call = TestCall::new();
    /// std::thread::scope(|scope| {
    ///     scope.spawn(|| {
    ///         std::thread::sleep(Duration::from_millis(20));
    ///         call.cancel();
    ///     });
    ///     // call.run(&job, input) sees the cancellation here.
    /// });
    /// ```
    pub fn cancel(&self) {
        self.cancel.store(1, Ordering::Relaxed);
    }

    /// The log lines the job wrote, after [`TestCall::run`].
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Calls `job` with `input` through the engine's shim: JSON in, JSON out, panics caught.
    pub fn run<J: Job>(&self, job: &J, input: Value) -> Result<Value, JobError> {
        crate::export::install_hooks();
        if self.cancelled {
            self.cancel();
        }
        let input =
            serde_json::to_vec(&input).map_err(|error| JobError::fatal(error.to_string()))?;
        let context = abi::CallContext {
            size: size_of::<abi::CallContext<'_>>(),
            cancel: &self.cancel,
            deadline_ns: self
                .timeout
                .map_or(abi::NO_DEADLINE, |timeout| timeout.as_nanos() as u64),
            grace_ns: self.grace.as_nanos() as u64,
            attempt: self.attempt,
            run_id: abi::Bytes::from_str("test-run"),
            stage_id: abi::Bytes::from_str("test-stage"),
            index: self.index.unwrap_or(abi::NO_INDEX),
            host: (self as *const Self).cast::<c_void>(),
            wait,
            emit,
            log,
        };

        let data = (job as *const J).cast::<c_void>();
        // SAFETY: `data` points to a `J` that outlives the call, `context` and `input` live
        // through it, and the callbacks below read `self` through `host`.
        let status = unsafe { crate::export::call::<J>(data, &context, abi::Bytes::new(&input)) };

        let emitted =
            std::mem::take(&mut *self.emitted.lock().unwrap_or_else(PoisonError::into_inner));
        if status == abi::STATUS_OK {
            let output = emitted.output.unwrap_or_default();
            return serde_json::from_slice(&output)
                .map_err(|error| JobError::fatal(error.to_string()));
        }
        let error: Value = emitted
            .error
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null);
        let message = error["message"].as_str().unwrap_or("no message").to_owned();
        let mut rebuilt = match status {
            abi::STATUS_CANCELLED => JobError::cancelled(),
            _ if error["retryable"] == Value::Bool(false) => JobError::fatal(message),
            _ => JobError::new(message),
        };
        if let Some(details) = error.get("details") {
            rebuilt = rebuilt.with_details(details);
        }
        Err(rebuilt)
    }
}

/// A folder of its own for one test, under the system's temporary folder, removed when
/// dropped: for jobs that read or write files.
#[derive(Debug)]
pub struct Scratch(PathBuf);

impl Scratch {
    /// A new, empty folder named after the process and `test`.
    ///
    /// # Panics
    ///
    /// When the folder cannot be made.
    pub fn new(test: &str) -> Self {
        let path = std::env::temp_dir().join(format!("weft-test-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("the scratch folder can be made");
        Self(path)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path under the folder, as a string (job inputs name files as strings).
    pub fn join(&self, relative: &str) -> String {
        self.0.join(relative).to_string_lossy().into_owned()
    }

    /// Writes `bytes` to `relative`, making the folders on the way, and returns its path.
    ///
    /// # Panics
    ///
    /// When the file cannot be written.
    pub fn write(&self, relative: &str, bytes: impl AsRef<[u8]>) -> String {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("the scratch folders can be made");
        }
        std::fs::write(&path, bytes).expect("the scratch file can be written");
        path.to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// # Safety
///
/// `host` is the `TestCall` of a running call.
unsafe fn test_call<'a>(host: *const c_void) -> &'a TestCall {
    // SAFETY: the caller promises `host` is a live `TestCall`.
    unsafe { &*host.cast::<TestCall>() }
}

unsafe extern "C" fn wait(host: *const c_void, timeout_ns: u64) -> i32 {
    // SAFETY: called back during the call with its `host`.
    let call = unsafe { test_call(host) };
    let end = Instant::now() + Duration::from_nanos(timeout_ns.min(u64::MAX / 2));
    while Instant::now() < end {
        if call.cancel.load(Ordering::Relaxed) != 0 {
            return 1;
        }
        std::thread::sleep(Duration::from_millis(1).min(end - Instant::now()));
    }
    i32::from(call.cancel.load(Ordering::Relaxed) != 0)
}

unsafe extern "C" fn emit(host: *const c_void, kind: u32, bytes: abi::Bytes<'_>) {
    // SAFETY: called back during the call with its `host` and bytes valid until it returns.
    let (call, bytes) = unsafe { (test_call(host), bytes.as_slice().to_vec()) };
    let mut emitted = call.emitted.lock().unwrap_or_else(PoisonError::into_inner);
    if kind == abi::EMIT_OUTPUT {
        emitted.output = Some(bytes);
    } else {
        emitted.error = Some(bytes);
    }
}

unsafe extern "C" fn log(host: *const c_void, level: u32, message: abi::Bytes<'_>) {
    // SAFETY: called back during the call with its `host` and bytes valid until it returns.
    let (call, message) = unsafe { (test_call(host), message.as_slice()) };
    let level = match level {
        abi::LOG_ERROR => Level::Error,
        abi::LOG_WARN => Level::Warn,
        abi::LOG_INFO => Level::Info,
        abi::LOG_DEBUG => Level::Debug,
        _ => Level::Trace,
    };
    call.logs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((level, String::from_utf8_lossy(message).into_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobContext;

    #[derive(Default)]
    struct Probe;

    impl Job for Probe {
        const NAME: &'static str = "probe";
        const DESCRIPTION: &'static str = "Behaves as its input says.";
        type Input = String;
        type Output = Value;

        fn run(&self, context: &JobContext<'_>, input: String) -> Result<Value, JobError> {
            match input.as_str() {
                "panic" => panic!("boom"),
                "sleep" => {
                    context.sleep(Duration::from_secs(30))?;
                    Ok(Value::Null)
                }
                "log" => {
                    context.info("hello");
                    log::warn!("from the log crate");
                    Ok(Value::Null)
                }
                "fail" => Err(JobError::fatal("nope")),
                "details" => {
                    Err(JobError::new("with details").with_details(serde_json::json!({"code": 3})))
                }
                _ => {
                    Ok(serde_json::json!({"attempt": context.attempt(), "index": context.index()}))
                }
            }
        }
    }

    #[test]
    fn a_job_runs_with_its_attempt_and_index() {
        let output = TestCall::new()
            .attempt(3)
            .index(7)
            .run(&Probe, "x".into())
            .unwrap();
        assert_eq!(output, serde_json::json!({"attempt": 3, "index": 7}));
    }

    #[test]
    fn a_panic_becomes_an_error_with_its_message() {
        let error = TestCall::new().run(&Probe, "panic".into()).unwrap_err();
        assert!(
            error.message().starts_with("the job panicked: boom"),
            "{error}"
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn a_sleep_returns_at_once_when_cancelled() {
        let error = TestCall::new()
            .cancelled()
            .run(&Probe, "sleep".into())
            .unwrap_err();
        assert!(error.is_cancelled());
    }

    #[test]
    fn bad_input_is_refused_before_the_job_runs() {
        let error = TestCall::new()
            .run(&Probe, serde_json::json!(12))
            .unwrap_err();
        assert!(
            error.message().starts_with("invalid input for `probe`"),
            "{error}"
        );
    }

    #[test]
    fn context_and_log_crate_lines_reach_the_host() {
        let call = TestCall::new();
        call.run(&Probe, "log".into()).unwrap();
        assert_eq!(
            call.logs(),
            vec![
                (Level::Info, "hello".to_owned()),
                (Level::Warn, "from the log crate".to_owned())
            ]
        );
    }

    #[test]
    fn a_cancellation_from_another_thread_wakes_a_sleep() {
        let call = TestCall::new();

        let error = std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                call.cancel();
            });
            call.run(&Probe, "sleep".into()).unwrap_err()
        });

        assert!(error.is_cancelled());
    }

    #[test]
    fn error_details_come_back() {
        let error = TestCall::new().run(&Probe, "details".into()).unwrap_err();
        assert_eq!(error.details(), Some(&serde_json::json!({"code": 3})));
    }

    #[test]
    fn fatal_errors_stay_fatal() {
        let error = TestCall::new().run(&Probe, "fail".into()).unwrap_err();
        assert_eq!((error.message(), error.is_retryable()), ("nope", false));
    }
}
