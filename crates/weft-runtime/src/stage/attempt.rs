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
    /// False when the attempt was cancelled while queued, and so never called the job.
    pub(super) started: bool,
}

/// One attempt of a job, queued in the pool: shared by the stage and the thread that runs
/// it.
pub(super) struct Attempt {
    shared: Arc<Shared>,
    key: Key,
    number: u32,
    input: Input,
    /// [`QUEUED`], then [`RETURNED`] or [`ABANDONED`], whichever side gets there first.
    state: AtomicU8,
    /// Its own cancellation, when it has a timeout; otherwise it reads the stage's.
    pub(super) flag: Option<CancelFlag>,
}

const QUEUED: u8 = 0;
const RETURNED: u8 = 1;
const ABANDONED: u8 = 2;

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
            flag,
        }
    }

    pub(super) fn flag(&self) -> &CancelFlag {
        self.flag.as_ref().unwrap_or(&self.shared.cancel)
    }

    /// Marks the call returned; false if the stage abandoned it first.
    fn returned(&self) -> bool {
        self.settle(RETURNED)
    }

    /// Marks the attempt abandoned; false if its call returned first.
    pub(super) fn abandon(&self) -> bool {
        self.settle(ABANDONED)
    }

    fn settle(&self, state: u8) -> bool {
        self.state
            .compare_exchange(QUEUED, state, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

impl Work for Attempt {
    /// Calls the job on a worker thread and leaves its result in the stage's inbox. An
    /// attempt cancelled while it waited in the queue is dropped without starting.
    fn run(&self) -> bool {
        let shared = &*self.shared;
        if self.flag().is_cancelled() {
            let retire = !self.returned();
            shared.inbox.push(Done {
                key: self.key,
                attempt: self.number,
                result: Err(Failure {
                    kind: FailureKind::Cancelled,
                    message: "cancelled before it started".to_owned(),
                    retryable: false,
                    details: None,
                }),
                span: None,
                started: false,
            });
            return retire;
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
            started: true,
        });
        retire
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
