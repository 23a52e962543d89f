//! An attempt of a job on a worker thread: what the stage shares with the threads, the
//! attempt itself (the pool's work), and the inbox where its result is left.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;
use weft_host::{CallOptions, CancelFlag, Failure, FailureKind, LogLevel, Plugin};

use super::table::Key;
use crate::events::{Event, EventKind, EventSink, WorkerSpan};
use crate::pool::Work;
use crate::run::emit;
use crate::state::Output;

/// The number of the worker thread running this code: from 1, in the order threads first
/// ran a job.
fn worker_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static NUMBER: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|number| *number)
}

/// What a stage shares with the worker threads that run its jobs.
pub(super) struct Shared {
    pub(super) plugin: Arc<Plugin>,
    pub(super) job: usize,
    pub(super) run_id: Arc<str>,
    pub(super) stage_id: Arc<str>,
    pub(super) events: Option<Arc<dyn EventSink>>,
    pub(super) fan_out: bool,
    pub(super) timeout: Option<Duration>,
    pub(super) grace: Duration,
    /// When the stage started: attempts tell when their call began from it.
    pub(super) epoch: Instant,
    /// The flag of every attempt that has no timeout, and so no flag of its own: cancelling
    /// the stage sets it once, whatever the number of jobs running.
    pub(super) cancel: CancelFlag,
    pub(super) inbox: Inbox,
}

/// Where worker threads leave the results of a stage's attempts, for the stage to take all
/// at once.
///
/// Each worker thread leaves its results in one of a few lanes, chosen by its number, so
/// that two threads finishing jobs at the same moment do not take turns on one lock: a lane
/// is mostly touched by one thread, and by the stage when it takes them.
#[derive(Default)]
pub(super) struct Inbox {
    lanes: [Lane; INBOX_LANES],
    pub(super) wake: Notify,
}

/// The lanes of an inbox: a few more than the cores of a small machine.
const INBOX_LANES: usize = 4;

/// One lane of an inbox, alone on its cache lines.
#[derive(Default)]
#[repr(align(128))]
struct Lane(Mutex<Vec<Done>>);

impl Inbox {
    pub(super) fn push(&self, done: Done) {
        let lane = &self.lanes[worker_number() as usize % INBOX_LANES];
        let mut queue = lane.0.lock().unwrap_or_else(PoisonError::into_inner);
        queue.push(done);
        let first = queue.len() == 1;
        drop(queue);
        // The stage takes everything there is when it wakes: the first result of a lane
        // after it last looked is the only one that needs to wake it.
        if first {
            self.wake.notify_one();
        }
    }

    /// Moves the results received into `into`, which must be empty.
    pub(super) fn take(&self, into: &mut Vec<Done>) {
        for lane in &self.lanes {
            let mut queue = lane.0.lock().unwrap_or_else(PoisonError::into_inner);
            if into.is_empty() {
                // Swapped, so that the memory of both vectors is used again.
                std::mem::swap(&mut *queue, into);
            } else {
                into.append(&mut queue);
            }
        }
    }
}

/// An attempt's result, as its worker thread left it.
pub(super) struct Done {
    pub(super) key: Key,
    pub(super) attempt: u32,
    pub(super) result: Result<Output, Failure>,
    /// Where and when it ran, measured only when there are events to tell.
    pub(super) span: Option<WorkerSpan>,
}

/// One attempt of a job, queued in the pool: shared by the stage and the thread that runs
/// it.
pub(super) struct Attempt {
    shared: Arc<Shared>,
    key: Key,
    number: u32,
    input: Input,
    /// Where the attempt is, changed by whichever side gets there first:
    ///
    /// - [`QUEUED`] to [`DROPPED`], by the stage or the worker, when it is cancelled before a
    ///   worker began the call: the job is never called, and the worker leaves no result;
    /// - [`QUEUED`] to [`STARTED`], by the worker as it begins the call; through
    ///   [`STARTING`] while it writes the `job_started` event, when there are events;
    /// - [`STARTED`] to [`RETURNED`] by the worker when the call returns, or to [`ABANDONED`]
    ///   by the stage when the grace period ends first.
    state: AtomicU8,
    /// When a worker began the call, in nanoseconds from the stage's epoch: written only when
    /// the stage has a timeout, which counts from then.
    begun: AtomicU64,
    /// Its own cancellation, when it has a timeout; otherwise it reads the stage's.
    pub(super) flag: Option<CancelFlag>,
}

const QUEUED: u8 = 0;
const STARTING: u8 = 1;
const STARTED: u8 = 2;
const RETURNED: u8 = 3;
const ABANDONED: u8 = 4;
const DROPPED: u8 = 5;

/// How the stage's giving up on an attempt at the end of its grace period went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum GiveUp {
    /// Its call was running: it is abandoned, and its thread must be replaced.
    Abandoned,
    /// It had not started: it is dropped, and will never be called.
    Dropped,
    /// Its call returned first: its result is in the inbox, or already taken.
    Returned,
}

impl Attempt {
    /// Attempt `number` of the job `key`; it has a cancellation flag of its own when the
    /// stage has a timeout.
    pub(super) fn new(shared: Arc<Shared>, key: Key, number: u32, input: Input) -> Self {
        let flag = shared.timeout.map(|_| CancelFlag::new());
        Self {
            shared,
            key,
            number,
            input,
            state: AtomicU8::new(QUEUED),
            begun: AtomicU64::new(0),
            flag,
        }
    }

    pub(super) fn flag(&self) -> &CancelFlag {
        self.flag.as_ref().unwrap_or(&self.shared.cancel)
    }

    /// Moves the attempt from `from` to `to`; on failure, gives the state it is in.
    fn swap(&self, from: u8, to: u8) -> Result<(), u8> {
        self.state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .map(drop)
    }

    /// When a worker began the call, if one did; known only when the stage has a timeout.
    pub(super) fn begun(&self) -> Option<Instant> {
        let state = self.state.load(Ordering::Acquire);
        if self.shared.timeout.is_none() || matches!(state, QUEUED | DROPPED) {
            return None;
        }
        let nanos = self.begun.load(Ordering::Relaxed);
        self.shared.epoch.checked_add(Duration::from_nanos(nanos))
    }

    /// Marks the call returned; false if the stage abandoned it first.
    fn returned(&self) -> bool {
        self.swap(STARTED, RETURNED).is_ok()
    }

    /// Drops the attempt if no worker has begun its call: true if it will never be called
    /// (dropped now, or by a worker that found it cancelled), and leaves no result.
    ///
    /// A worker that is writing the attempt's `job_started` event is waited for, so that no
    /// `job_started` follows what the stage writes next.
    pub(super) fn drop_queued(&self) -> bool {
        loop {
            match self.swap(QUEUED, DROPPED) {
                Ok(()) | Err(DROPPED) => return true,
                Err(STARTING) => wait_a_little(),
                Err(_) => return false,
            }
        }
    }

    /// Gives up on the attempt when its grace period ends: abandons its call if it is
    /// running, drops it if it never started.
    pub(super) fn give_up(&self) -> GiveUp {
        loop {
            match self.swap(STARTED, ABANDONED) {
                Ok(()) => return GiveUp::Abandoned,
                Err(STARTING) => wait_a_little(),
                Err(QUEUED) => {
                    if self.drop_queued() {
                        return GiveUp::Dropped;
                    }
                    // A worker began it meanwhile: it is running.
                }
                Err(DROPPED) => return GiveUp::Dropped,
                Err(_) => return GiveUp::Returned,
            }
        }
    }
}

/// Lets a worker that is between [`STARTING`] and [`STARTED`] (writing an event) go on.
fn wait_a_little() {
    std::thread::yield_now();
}

impl Work for Attempt {
    /// Calls the job on a worker thread and leaves its result in the stage's inbox. An
    /// attempt cancelled while it waited in the queue is dropped without starting, and
    /// leaves nothing: the stage ends its job when it cancels it.
    fn run(&self) -> bool {
        let shared = &*self.shared;
        if self.flag().is_cancelled() {
            // The stage that set the flag drops its queued attempts right after: whichever
            // side drops it, the stage ends the job.
            let _ = self.swap(QUEUED, DROPPED);
            return false;
        }
        if !self.begin() {
            return false;
        }
        let item = shared.fan_out.then_some(self.key.index as u64);
        let log = |level: LogLevel, message: &str| {
            plugin_log(
                &shared.events,
                &shared.run_id,
                &shared.stage_id,
                item,
                level,
                message,
            )
        };
        let options = CallOptions {
            cancel: self.flag(),
            timeout: shared.timeout,
            grace: shared.grace,
            attempt: self.number,
            run_id: &shared.run_id,
            stage_id: &shared.stage_id,
            index: item,
            log: &log,
        };
        let clock = shared
            .events
            .is_some()
            .then(|| (SystemTime::now(), Instant::now()));
        let call = AssertUnwindSafe(|| {
            shared.plugin.jobs[shared.job].call_raw(self.input.bytes(), &options)
        });
        // The SDK catches a plugin's panics; one here is the engine's, and the job fails.
        let result = std::panic::catch_unwind(call).unwrap_or_else(|_| {
            Err(Failure {
                kind: FailureKind::Error,
                message: "the engine failed while calling the job".to_owned(),
                retryable: false,
                details: None,
            })
        });
        let span = clock.map(|(start, clock)| WorkerSpan {
            thread: worker_number(),
            start,
            call_ms: clock.elapsed().as_secs_f64() * 1000.0,
        });
        let retire = !self.returned();
        shared.inbox.push(Done {
            key: self.key,
            attempt: self.number,
            result,
            span,
        });
        retire
    }
}

impl Attempt {
    /// Marks the call begun, and writes its `job_started` event when there are events; false
    /// if the stage dropped the attempt first. Without events, it costs one atomic operation.
    fn begin(&self) -> bool {
        let shared = &*self.shared;
        if shared.timeout.is_some() {
            // Published by the change of state below.
            let begun = shared.epoch.elapsed().as_nanos();
            self.begun
                .store(u64::try_from(begun).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
        let Some(events) = &shared.events else {
            return self.swap(QUEUED, STARTED).is_ok();
        };
        if self.swap(QUEUED, STARTING).is_err() {
            return false;
        }
        // Marks the call started when the event is out, and also if the sink panics, so that
        // the stage never waits on an attempt left between the two states.
        let _started = Started(&self.state);
        let mut event = Event::new(EventKind::JobStarted, &shared.run_id);
        event.stage = Some(shared.stage_id.clone());
        event.index = shared.fan_out.then_some(self.key.index);
        event.attempt = Some(self.number);
        events.emit(event);
        true
    }
}

/// Moves an attempt from [`STARTING`] to [`STARTED`] when dropped.
struct Started<'a>(&'a AtomicU8);

impl Drop for Started<'_> {
    fn drop(&mut self) {
        self.0.store(STARTED, Ordering::Release);
    }
}

/// A job's input text: one for the whole stage when its `with` holds no expression.
pub(super) enum Input {
    Shared(Arc<[u8]>),
    Own(Vec<u8>),
}

impl Input {
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            Input::Shared(bytes) => bytes,
            Input::Own(bytes) => bytes,
        }
    }
}

/// A plugin's log line: to tracing (stderr), tagged with stage and item, and to the events.
fn plugin_log(
    events: &Option<Arc<dyn EventSink>>,
    run_id: &Arc<str>,
    stage: &Arc<str>,
    index: Option<u64>,
    level: LogLevel,
    message: &str,
) {
    match (level, index) {
        (LogLevel::Error, Some(index)) => {
            tracing::error!(target: "plugin", stage = %stage, index, "{message}")
        }
        (LogLevel::Error, None) => tracing::error!(target: "plugin", stage = %stage, "{message}"),
        (LogLevel::Warn, Some(index)) => {
            tracing::warn!(target: "plugin", stage = %stage, index, "{message}")
        }
        (LogLevel::Warn, None) => tracing::warn!(target: "plugin", stage = %stage, "{message}"),
        (LogLevel::Info, Some(index)) => {
            tracing::info!(target: "plugin", stage = %stage, index, "{message}")
        }
        (LogLevel::Info, None) => tracing::info!(target: "plugin", stage = %stage, "{message}"),
        (LogLevel::Debug, _) => {
            tracing::debug!(target: "plugin", stage = %stage, index, "{message}")
        }
        (LogLevel::Trace, _) => {
            tracing::trace!(target: "plugin", stage = %stage, index, "{message}")
        }
    }
    emit(events, || {
        let mut event = Event::new(EventKind::Log, run_id);
        event.stage = Some(stage.clone());
        event.index = index.map(|index| index as usize);
        event.message = Some(message.to_owned());
        event.level = Some(match level {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        });
        event
    });
}
