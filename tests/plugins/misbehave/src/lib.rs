//! Jobs that misbehave on purpose, so that the tests can check that the engine survives them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weft_plugin::{Job, JobContext, JobError};

/// Panics with the message it is given.
#[derive(Default)]
pub struct Panic;

/// What to panic with.
#[derive(Deserialize, JsonSchema)]
pub struct PanicInput {
    /// The panic message.
    message: String,
}

impl Job for Panic {
    const NAME: &'static str = "panic";
    const DESCRIPTION: &'static str = "Panics with `message`.";
    type Input = PanicInput;
    type Output = Value;

    fn run(&self, _: &JobContext<'_>, input: PanicInput) -> Result<Value, JobError> {
        panic!("{}", input.message)
    }
}

/// Panics with `message` when `panic` is true, and returns `message` otherwise, so that one
/// item of a fan-out can panic while the others succeed.
#[derive(Default)]
pub struct PanicIf;

/// Whether to panic, and with what.
#[derive(Deserialize, JsonSchema)]
pub struct PanicIfInput {
    /// Panic rather than return.
    panic: bool,
    /// The panic message, or the output.
    message: String,
}

impl Job for PanicIf {
    const NAME: &'static str = "panic_if";
    const DESCRIPTION: &'static str = "Panics with `message` when `panic` is true; returns `message` otherwise.";
    type Input = PanicIfInput;
    type Output = String;

    fn run(&self, _: &JobContext<'_>, input: PanicIfInput) -> Result<String, JobError> {
        if input.panic {
            panic!("{}", input.message)
        }
        Ok(input.message)
    }
}

/// Busy-waits for `seconds`, never looking at its cancellation.
#[derive(Default)]
pub struct IgnoreCancel;

/// How long to ignore everything.
#[derive(Deserialize, JsonSchema)]
pub struct IgnoreCancelInput {
    /// Seconds to spin.
    seconds: f64,
}

impl Job for IgnoreCancel {
    const NAME: &'static str = "ignore_cancel";
    const DESCRIPTION: &'static str = "Sleeps for `seconds` without ever checking for cancellation.";
    const WAITS: bool = true;
    type Input = IgnoreCancelInput;
    type Output = Value;

    fn run(&self, _: &JobContext<'_>, input: IgnoreCancelInput) -> Result<Value, JobError> {
        std::thread::sleep(Duration::from_secs_f64(input.seconds));
        Ok(Value::Null)
    }
}

/// Returns a string of `mebibytes` MiB.
#[derive(Default)]
pub struct Huge;

/// How big an output.
#[derive(Deserialize, JsonSchema)]
pub struct HugeInput {
    /// The output's size in MiB.
    mebibytes: usize,
}

impl Job for Huge {
    const NAME: &'static str = "huge";
    const DESCRIPTION: &'static str = "Returns a string of `mebibytes` MiB.";
    type Input = HugeInput;
    type Output = String;

    fn run(&self, _: &JobContext<'_>, input: HugeInput) -> Result<String, JobError> {
        Ok("x".repeat(input.mebibytes * 1024 * 1024))
    }
}

/// Records how many of its calls run at once, and the most ever seen.
#[derive(Default)]
pub struct Concurrency {
    running: AtomicUsize,
    most: AtomicUsize,
}

/// How long each call holds its place.
#[derive(Deserialize, JsonSchema)]
pub struct ConcurrencyInput {
    /// Milliseconds to hold.
    millis: u64,
}

/// What a call saw.
#[derive(Serialize, JsonSchema)]
pub struct ConcurrencyOutput {
    /// The most calls running at once so far, this one included.
    most: usize,
}

impl Job for Concurrency {
    const NAME: &'static str = "concurrency";
    const DESCRIPTION: &'static str = "Holds its place for `millis` and reports the most calls seen at once.";
    const WAITS: bool = true;
    type Input = ConcurrencyInput;
    type Output = ConcurrencyOutput;

    fn run(&self, context: &JobContext<'_>, input: ConcurrencyInput) -> Result<ConcurrencyOutput, JobError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        let slept = context.sleep(Duration::from_millis(input.millis));
        self.running.fetch_sub(1, Ordering::SeqCst);
        slept?;
        Ok(ConcurrencyOutput {
            most: self.most.load(Ordering::SeqCst),
        })
    }
}

/// Spins until cancelled, checking the flag, and reports how long it ran.
#[derive(Default)]
pub struct Spin;

impl Job for Spin {
    const NAME: &'static str = "spin";
    const DESCRIPTION: &'static str = "Spins on the cancellation flag until it is set.";
    type Input = Value;
    type Output = Value;

    fn run(&self, context: &JobContext<'_>, _: Value) -> Result<Value, JobError> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            context.check()?;
            std::hint::spin_loop();
        }
        Err(JobError::fatal("never cancelled"))
    }
}

/// Writes a log line at each level and returns nothing.
#[derive(Default)]
pub struct Chatty;

impl Job for Chatty {
    const NAME: &'static str = "chatty";
    const DESCRIPTION: &'static str = "Logs one line per level.";
    type Input = Value;
    type Output = Value;

    fn run(&self, context: &JobContext<'_>, _: Value) -> Result<Value, JobError> {
        context.info("an info line");
        context.warn("a warning");
        context.debug("a debug line");
        Ok(Value::Null)
    }
}

weft_plugin::export_plugin!(
    name: "misbehave",
    jobs: [Panic, PanicIf, IgnoreCancel, Huge, Concurrency::default(), Spin, Chatty],
);
