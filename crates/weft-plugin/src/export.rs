//! What [`crate::export_plugin!`] expands to: the descriptor, the call shim around each job,
//! the panic hook and the log bridge. Not for direct use.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Once, OnceLock};

use schemars::generate::SchemaSettings;
use serde::Serialize;
use weft_plugin_abi as abi;

use crate::context::{JobContext, Level, log_raw};
use crate::{Job, JobError};

/// The descriptor, built once on the first call of the entry point.
pub struct DescriptorCell(OnceLock<DescriptorRef>);

struct DescriptorRef(&'static abi::PluginDescriptor);

// SAFETY: the descriptor and everything it points to are leaked, never written after they are
// built, and never freed: sharing references to them between threads is sound.
unsafe impl Send for DescriptorRef {}
// SAFETY: as above.
unsafe impl Sync for DescriptorRef {}

impl DescriptorCell {
    /// An empty cell, for a `static`.
    pub const fn new() -> Self {
        Self(OnceLock::new())
    }

    /// The descriptor, built by `build` on first use. Returns null when building panicked, so
    /// that the engine reports a broken plugin instead of crashing.
    pub fn get_or_init(
        &self,
        build: impl FnOnce() -> &'static abi::PluginDescriptor,
    ) -> *const abi::PluginDescriptor {
        install_hooks();
        let built = panic::catch_unwind(AssertUnwindSafe(|| {
            self.0.get_or_init(|| DescriptorRef(build())).0 as *const _
        }));
        built.unwrap_or(std::ptr::null())
    }
}

impl Default for DescriptorCell {
    fn default() -> Self {
        Self::new()
    }
}

/// Leaks a string for the life of the process and borrows it as ABI bytes.
fn leak(text: String) -> abi::Bytes<'static> {
    abi::Bytes::from_str(Box::leak(text.into_boxed_str()))
}

/// Builds the descriptor of a plugin.
pub fn describe(
    name: &str,
    version: &str,
    jobs: Vec<abi::JobDescriptor>,
) -> &'static abi::PluginDescriptor {
    let jobs: &'static [abi::JobDescriptor] = Box::leak(jobs.into_boxed_slice());
    Box::leak(Box::new(abi::PluginDescriptor {
        magic: abi::MAGIC,
        abi_major: abi::ABI_MAJOR,
        abi_minor: abi::ABI_MINOR,
        size: size_of::<abi::PluginDescriptor>(),
        name: leak(name.to_owned()),
        version: leak(version.to_owned()),
        sdk_version: leak(crate::SDK_VERSION.to_owned()),
        jobs: jobs.as_ptr(),
        job_count: jobs.len(),
        job_size: size_of::<abi::JobDescriptor>(),
    }))
}

/// The JSON Schema of `T`, self-contained (no `$ref` to outside definitions), draft-07.
pub fn schema_of<T: schemars::JsonSchema>() -> String {
    let mut settings = SchemaSettings::draft07();
    settings.inline_subschemas = true;
    let schema = settings.into_generator().into_root_schema_for::<T>();
    serde_json::to_string(&schema).unwrap_or_else(|_| "true".to_owned())
}

/// Describes one job, leaking the job value for the life of the process.
pub fn job<J: Job>(job: J) -> abi::JobDescriptor {
    let job: &'static J = Box::leak(Box::new(job));
    abi::JobDescriptor {
        name: abi::Bytes::from_str(J::NAME),
        description: abi::Bytes::from_str(J::DESCRIPTION),
        input_schema: leak(schema_of::<J::Input>()),
        output_schema: leak(schema_of::<J::Output>()),
        flags: if J::WAITS { abi::JOB_FLAG_WAITS } else { 0 },
        call: call::<J>,
        data: (job as *const J).cast::<c_void>(),
    }
}

/// The shim the engine calls: JSON in, the job, JSON out, panics caught.
///
/// # Safety
///
/// `data` is the `&'static J` that [`job`] leaked; `context` points to a valid context for
/// the duration of the call; `input` is valid for the call.
pub(crate) unsafe extern "C" fn call<J: Job>(
    data: *const c_void,
    context: *const abi::CallContext<'_>,
    input: abi::Bytes<'_>,
) -> i32 {
    // SAFETY: the host passes a context valid for the whole call.
    let raw = unsafe { &*context };
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `data` is the job leaked by `job::<J>`, and lives for the process.
        let job = unsafe { &*data.cast::<J>() };
        // SAFETY: the host keeps the input alive for the call.
        let input = unsafe { input.as_slice() };
        let _current = CurrentCall::enter(raw);
        run(job, raw, input)
    }));

    match outcome {
        Ok(status) => status,
        Err(payload) => {
            let message = panic_message(&*payload);
            let error = JobError::fatal(format!("the job panicked: {message}"));
            // A panic while reporting the panic leaves the job with no error; the engine
            // says so rather than crash.
            let _ =
                panic::catch_unwind(AssertUnwindSafe(|| emit_json(raw, abi::EMIT_ERROR, &error)));
            abi::STATUS_PANICKED
        }
    }
}

fn run<J: Job>(job: &J, raw: &abi::CallContext<'_>, input: &[u8]) -> i32 {
    let input: J::Input = match serde_json::from_slice(input) {
        Ok(input) => input,
        Err(error) => {
            let error = JobError::fatal(format!("invalid input for `{}`: {error}", J::NAME));
            emit_json(raw, abi::EMIT_ERROR, &error);
            return abi::STATUS_BAD_INPUT;
        }
    };

    let context = JobContext::new(raw);
    match job.run(&context, input) {
        Ok(output) => match serde_json::to_vec(&output) {
            Ok(bytes) => {
                emit(raw, abi::EMIT_OUTPUT, &bytes);
                abi::STATUS_OK
            }
            Err(error) => {
                let error =
                    JobError::fatal(format!("the output could not be encoded as JSON: {error}"));
                emit_json(raw, abi::EMIT_ERROR, &error);
                abi::STATUS_ERROR
            }
        },
        Err(error) => {
            emit_json(raw, abi::EMIT_ERROR, &error);
            if error.is_cancelled() {
                abi::STATUS_CANCELLED
            } else {
                abi::STATUS_ERROR
            }
        }
    }
}

fn emit_json(raw: &abi::CallContext<'_>, kind: u32, value: &impl Serialize) {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| {
        br#"{"message":"the error could not be encoded","retryable":false}"#.to_vec()
    });
    emit(raw, kind, &bytes);
}

fn emit(raw: &abi::CallContext<'_>, kind: u32, bytes: &[u8]) {
    // SAFETY: `emit` and `host` come from the host for a call that is still going; the host
    // copies the bytes before it returns.
    unsafe { (raw.emit)(raw.host, kind, abi::Bytes::new(bytes)) };
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let message = payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a value that is not a string".to_owned());
    match LAST_PANIC_LOCATION.with(|location| location.borrow_mut().take()) {
        Some(location) => format!("{message} (at {location})"),
        None => message,
    }
}

thread_local! {
    /// The call this thread is running, for the log bridge and the panic hook.
    static CURRENT: Cell<*const c_void> = const { Cell::new(std::ptr::null()) };
    /// Where the last panic on this thread happened, for the job's error.
    static LAST_PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Marks the call this thread runs, for the time of the call.
struct CurrentCall {
    previous: *const c_void,
}

impl CurrentCall {
    fn enter(raw: &abi::CallContext<'_>) -> Self {
        let pointer = (raw as *const abi::CallContext<'_>).cast::<c_void>();
        Self {
            previous: CURRENT.with(|current| current.replace(pointer)),
        }
    }
}

impl Drop for CurrentCall {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(self.previous));
    }
}

/// Runs `f` with the call this thread runs, if any.
fn with_current(f: impl FnOnce(&abi::CallContext<'_>)) -> bool {
    let pointer = CURRENT.with(Cell::get);
    if pointer.is_null() {
        return false;
    }
    // SAFETY: `CURRENT` is set only while `call` runs on this thread, with a context that is
    // valid for the whole call, and reset when the call ends.
    f(unsafe { &*pointer.cast::<abi::CallContext<'_>>() });
    true
}

/// Installs, once per plugin library, a panic hook (the panic's location goes into the job's
/// error rather than to stderr) and a bridge from the `log` crate to the engine's log.
pub(crate) fn install_hooks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let location = info.location().map(ToString::to_string);
            let in_a_job = with_current(|_| {
                LAST_PANIC_LOCATION.with(|slot| *slot.borrow_mut() = location.clone());
            });
            if !in_a_job {
                previous(info);
            }
        }));

        static BRIDGE: LogBridge = LogBridge;
        if log::set_logger(&BRIDGE).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
        }
    });
}

/// Carries the `log` crate's records to the engine, through the call of the current thread.
/// Records logged outside a job call (on a thread the job started itself) are dropped.
struct LogBridge;

impl log::Log for LogBridge {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = match record.level() {
            log::Level::Error => Level::Error,
            log::Level::Warn => Level::Warn,
            log::Level::Info => Level::Info,
            log::Level::Debug => Level::Debug,
            log::Level::Trace => Level::Trace,
        };
        with_current(|raw| log_raw(raw, level, &record.args().to_string()));
    }

    fn flush(&self) {}
}
