//! One stage at run time: its items, its jobs streamed into the pool, each job's attempts
//! with retries, timeouts and cancellation, and the stage's final state.
//!
//! A fan-out never holds more than its parallelism of rendered inputs: an item's input is
//! rendered when its job is about to be queued, and the number of jobs in flight is bounded
//! by the stage's `max_parallel` and by the pool's slots.
//!
//! A job costs the scheduler no task, channel or timer of its own: the stage's one loop
//! ([`Jobs`]) queues attempts in batches, worker threads leave results in the stage's inbox
//! and wake the loop only for the first result after it last looked, and timeouts, grace
//! periods and backoffs are deadlines in the stage's queues, served by one timer. Attempts
//! without a timeout share the stage's cancellation flag, so cancelling a stage sets one flag
//! however many jobs run.
//!
//! An attempt's `job_started` is written by the worker that begins its call, and its timeout
//! counts from then. A cancellation drops at once the attempts that no worker has begun:
//! their jobs end `cancelled` without being called, and only attempts that were running
//! have the grace period, and can be abandoned.

mod attempt;
mod table;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;
use weft_host::{CancelFlag, Failure, FailureKind, Plugin};
use weft_spec::{Defaults, RetryPolicy, Stage};

use self::attempt::{Attempt, Done, GiveUp, Inbox, Input, Shared};
use self::table::{Key, Live, Table};
use crate::eval::{self, Scope, Template};
use crate::events::{Event, EventKind, EventSink, WorkerSpan};
use crate::pool::{Lane, Pool, Slots, Task};
use crate::run::emit;
use crate::state::{ErrorInfo, Item, Items, JobStatus, Output, StageRecord, StageStatus};

/// Everything a stage needs to run.
pub(crate) struct StageRun {
    pub id: Arc<str>,
    pub stage: Stage,
    pub defaults: Option<Defaults>,
    pub plugin: Arc<Plugin>,
    pub job: usize,
    pub scope: Scope,
    pub pool: Pool,
    pub token: CancellationToken,
    /// Set by `on_error: finish`: start no new job and no new retry.
    pub halt: Option<CancellationToken>,
    pub run_permits: Option<Arc<Semaphore>>,
    pub grace: Duration,
    pub run_id: Arc<str>,
    pub events: Option<Arc<dyn EventSink>>,
    /// Told as soon as the stage is known to fail, before its running jobs end.
    pub failed_early: mpsc::UnboundedSender<Arc<str>>,
}

/// How one job ended.
struct JobEnd {
    status: JobStatus,
    output: Option<Output>,
    error: Option<ErrorInfo>,
    attempts: u32,
    /// Where the last attempt ran, if it reached a worker thread and returned.
    worker: Option<WorkerSpan>,
}

impl JobEnd {
    fn new(status: JobStatus, attempts: u32, error: Option<ErrorInfo>) -> Self {
        Self {
            status,
            output: None,
            error,
            attempts,
            worker: None,
        }
    }

    fn on(mut self, worker: Option<WorkerSpan>) -> Self {
        self.worker = worker;
        self
    }
}

/// What stops the stage from queueing more jobs for now.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Blocked {
    Nothing,
    /// No slot is free in the pool's lane.
    Slot,
    /// The workflow's `max_parallel` is reached.
    Permit,
}

/// A stage's jobs while they run: which have started, their attempts in the pool, their
/// timers, and the pool slots they hold.
///
/// One loop on the scheduler's thread drives it. Each turn takes every result the worker
/// threads left, fires the timers that are due, and queues every job that can start, all in
/// batches; then it sleeps until the next result, timer or free slot.
struct Jobs {
    run: StageRun,
    shared: Arc<Shared>,
    record: StageRecord,
    template: Option<Template>,
    literal_input: Option<Arc<[u8]>>,
    lane: Lane,
    retry: RetryPolicy,
    total: usize,
    parallel: usize,
    allowed: usize,
    next: usize,
    failures: usize,
    /// No new job starts: too many failed, or the run was cancelled or halted.
    stopped: bool,
    cancelled: bool,
    halted: bool,
    live: Table,
    /// The pool slots of the attempts in the pool, and `spare` more not yet used.
    slots: Slots,
    spare: usize,
    /// A place under the workflow's `max_parallel`, won by waiting, for the next new job.
    permit: Option<OwnedSemaphorePermit>,
    /// Timeouts by attempt, (deadline, place, index, attempt), soonest first. An attempt's
    /// first deadline counts from when it was queued; when it comes, the deadline is moved
    /// to count from when a worker began the call, which only the attempt knows.
    timeouts: BinaryHeap<Reverse<(Instant, usize, usize, u32)>>,
    /// Grace periods by attempt, (deadline, job, attempt): in deadline order, since every
    /// attempt of a stage has the same grace.
    graces: VecDeque<(Instant, Key, u32)>,
    /// Jobs waiting to retry, by when; then those whose time has come, waiting for a slot.
    backoffs: BinaryHeap<Reverse<(Instant, usize, usize)>>,
    due: VecDeque<Key>,
    /// The results taken from the inbox, kept to reuse its memory.
    done: Vec<Done>,
    started: Instant,
}

type Waiting<T> = Option<Pin<Box<dyn Future<Output = T>>>>;

/// Waits on `future` if there is one; never otherwise.
async fn wait_on<T>(future: &mut Waiting<T>) -> T {
    match future {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}

impl Jobs {
    async fn drive(mut self) -> StageRecord {
        let mut slot_wait: Waiting<Slots> = None;
        let mut permit_wait: Waiting<OwnedSemaphorePermit> = None;
        let shared = self.shared.clone();
        let (token, halt) = (self.run.token.clone(), self.run.halt.clone());

        loop {
            self.take_results();
            self.watch();
            self.fire_timers(Instant::now());
            let blocked = self.queue_jobs();
            if self.live.is_empty() && (self.stopped || self.next >= self.total) {
                break;
            }

            if blocked != Blocked::Slot {
                slot_wait = None;
            } else if slot_wait.is_none() {
                let (pool, lane) = (self.run.pool.clone(), self.lane);
                slot_wait = Some(Box::pin(async move { pool.slot(lane).await }));
            }
            match (&self.run.run_permits, blocked) {
                (Some(semaphore), Blocked::Permit) if permit_wait.is_none() => {
                    let closed = |_| unreachable!("the run's semaphore is never closed");
                    let acquire = semaphore.clone().acquire_owned();
                    permit_wait = Some(Box::pin(
                        async move { acquire.await.unwrap_or_else(closed) },
                    ));
                }
                (_, Blocked::Permit) => {}
                _ => permit_wait = None,
            }
            let deadline = self.next_deadline();

            tokio::select! {
                biased;
                () = shared.inbox.wake.notified() => {}
                () = token.cancelled(), if !self.cancelled => {}
                () = halted(&halt), if !self.halted => {}
                () = sleep_until(deadline.unwrap_or_else(Instant::now).into()), if deadline.is_some() => {}
                slots = wait_on(&mut slot_wait), if slot_wait.is_some() => {
                    slot_wait = None;
                    self.spare += slots.count();
                    self.slots.merge(slots);
                }
                permit = wait_on(&mut permit_wait), if permit_wait.is_some() => {
                    permit_wait = None;
                    self.permit = Some(permit);
                }
            }
        }
        self.slots.release(self.spare);
        self.finish()
    }

    /// The stage's final state, from its jobs'.
    fn finish(self) -> StageRecord {
        let mut record = self.record;
        record.status = if self.failures > self.allowed {
            StageStatus::Failed
        } else if record
            .jobs
            .iter()
            .any(|status| matches!(status, JobStatus::Cancelled | JobStatus::Abandoned))
        {
            StageStatus::Cancelled
        } else {
            StageStatus::Succeeded
        };
        record.elapsed = self.started.elapsed();
        emit_stage_finished(&self.run.events, &self.run.run_id, &self.run.id, &record);
        tracing::info!(stage = %self.run.id, status = %record.status, elapsed = ?record.elapsed, "stage finished");
        record
    }

    fn halting(&self) -> bool {
        self.run
            .halt
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled)
    }

    /// Notices a cancellation or a halt of the run.
    fn watch(&mut self) {
        if !self.cancelled && self.run.token.is_cancelled() {
            self.cancelled = true;
            self.stopped = true;
            self.cancel_all();
        }
        if !self.halted && self.halting() {
            self.halted = true;
            self.stopped = true;
            self.halt_all();
        }
    }

    /// Cancels every attempt in the pool: one that a worker has begun has the grace period
    /// to return; one still queued is dropped, and its job ends at once, as does a job
    /// waiting to retry.
    fn cancel_all(&mut self) {
        self.shared.cancel.cancel();
        let deadline = after(Instant::now(), self.shared.grace);
        let keys: Vec<Key> = self.live.keys().collect();
        // First every attempt is either dropped or known to have begun (with its
        // `job_started` written), then the jobs that are not running end: no `job_started`
        // of the stage follows its first cancelled job.
        let mut ending = Vec::new();
        for key in keys {
            let Some(live) = self.live.get_mut(key) else {
                continue;
            };
            match &live.running {
                Some(attempt) => {
                    if let Some(flag) = &attempt.flag {
                        flag.cancel();
                    }
                    if attempt.drop_queued() {
                        live.running = None;
                        live.attempt -= 1;
                        self.slots.release(1);
                        ending.push(key);
                    } else {
                        live.cancelled = true;
                        self.graces.push_back((deadline, key, live.attempt));
                    }
                }
                None => ending.push(key),
            }
        }
        for key in ending {
            self.end_waiting(key);
        }
        // A cancelled attempt no longer times out: the grace period is its last deadline.
        self.timeouts.clear();
        self.backoffs.clear();
        self.due.clear();
    }

    /// `on_error: finish`: a job waiting to retry ends with its last failure; attempts in the
    /// pool go on.
    fn halt_all(&mut self) {
        let keys: Vec<Key> = self.live.keys().collect();
        for key in keys {
            let Some(live) = self.live.get_mut(key) else {
                continue;
            };
            if live.running.is_some() {
                continue;
            }
            let attempts = live.attempt;
            let end = match live.last.take() {
                Some((status, error, worker)) => {
                    JobEnd::new(status, attempts, Some(error)).on(worker)
                }
                None => JobEnd::new(JobStatus::Cancelled, attempts, None),
            };
            self.end(key, end);
        }
        self.backoffs.clear();
        self.due.clear();
    }

    /// Takes every result the worker threads left, and gives their slots back at once.
    fn take_results(&mut self) {
        let mut done = std::mem::take(&mut self.done);
        self.shared.inbox.take(&mut done);
        let mut returned = 0;
        for result in done.drain(..) {
            if self.returned(result) {
                returned += 1;
            }
        }
        self.done = done;
        self.slots.release(returned);
    }

    /// Handles one result; false if it belongs to an attempt given up on (abandoned), whose
    /// slot is already free.
    fn returned(&mut self, done: Done) -> bool {
        let Some(live) = self.live.get_mut(done.key) else {
            return false;
        };
        if live.attempt != done.attempt || live.running.take().is_none() {
            return false;
        }
        let (key, attempt) = (done.key, done.attempt);
        match done.result {
            _ if live.timed_out => {
                let failure = self.timed_out(true);
                self.failed(key, failure, JobStatus::TimedOut, done.span);
            }
            Ok(output) => {
                let mut end = JobEnd::new(JobStatus::Succeeded, attempt, None).on(done.span);
                end.output = Some(output);
                self.end(key, end);
            }
            Err(failure)
                if live.cancelled
                    || (failure.kind == FailureKind::Cancelled
                        && self.run.token.is_cancelled()) =>
            {
                // The error the job stopped with is kept: "cancelled", or whatever it said.
                let end = JobEnd::new(JobStatus::Cancelled, attempt, Some(error_info(failure)));
                self.end(key, end.on(done.span));
            }
            Err(failure) => self.failed(key, failure, JobStatus::Failed, done.span),
        }
        true
    }

    /// The failure of an attempt that timed out; `returned` says whether it stopped within
    /// the grace period.
    fn timed_out(&self, returned: bool) -> Failure {
        let limit = humantime::format_duration(self.shared.timeout.unwrap_or_default());
        let grace = humantime::format_duration(self.shared.grace);
        let message = if returned {
            format!("timed out after {limit}")
        } else {
            // One that did not stop has left its thread behind, which the pool replaced.
            format!(
                "timed out after {limit}, and did not stop within the grace period of {grace}: its thread was abandoned"
            )
        };
        Failure {
            kind: FailureKind::Error,
            message,
            retryable: true,
            details: None,
        }
    }

    /// A failed attempt: the job retries after its backoff, or ends with the failure.
    fn failed(
        &mut self,
        key: Key,
        failure: Failure,
        status: JobStatus,
        worker: Option<WorkerSpan>,
    ) {
        let error = error_info(failure);
        let stopping = self.halting() || self.run.token.is_cancelled();
        let Some(live) = self.live.get_mut(key) else {
            return;
        };
        let attempt = live.attempt;
        if !error.retryable || attempt > self.retry.attempts || stopping {
            self.end(key, JobEnd::new(status, attempt, Some(error)).on(worker));
            return;
        }

        let delay = backoff(&self.retry, attempt);
        let index = key.index;
        tracing::info!(stage = %self.run.id, index, attempt, delay = ?delay, error = %error.message, "retrying");
        emit(&self.run.events, || {
            let mut event = Event::new(EventKind::JobRetrying, &self.run.run_id);
            event.stage = Some(self.run.id.clone());
            event.index = self.shared.fan_out.then_some(index);
            event.attempt = Some(attempt);
            event.error = Some(error.clone());
            event.duration_ms = Some(delay.as_secs_f64() * 1000.0);
            event.worker = worker;
            event
        });
        live.last = Some((status, error, worker));
        self.backoffs.push(Reverse((
            after(Instant::now(), delay),
            key.place,
            key.index,
        )));
    }

    /// Ends a cancelled job that is not running (waiting to retry, or whose attempt was
    /// dropped before it started): with the attempts that ran, and the error of the last of
    /// them if it failed; none if no attempt ran.
    fn end_waiting(&mut self, key: Key) {
        let Some(live) = self.live.get(key) else {
            return;
        };
        let end = JobEnd::new(JobStatus::Cancelled, live.attempt, live.last_error());
        self.end(key, end);
    }

    /// Ends a job: its event, its count against `tolerate`, its place in the record.
    fn end(&mut self, key: Key, end: JobEnd) {
        let started = self.live.remove(key).and_then(|live| live.started);
        emit_job_finished(&self.shared, key.index, &end, started);
        if end.status.counts_as_failure() {
            self.count_failure();
        }
        settle(&mut self.record, key.index, end);
    }

    fn count_failure(&mut self) {
        self.failures += 1;
        if self.failures > self.allowed && !self.stopped {
            self.stopped = true;
            let _ = self.run.failed_early.send(self.run.id.clone());
        }
    }

    /// Fires the timers that are due: timeouts cancel their attempt, graces abandon it, and
    /// backoffs make their job due for another attempt.
    fn fire_timers(&mut self, now: Instant) {
        let mut again = Vec::new();
        while let Some(&Reverse((deadline, place, index, attempt))) = self.timeouts.peek() {
            let key = Key { place, index };
            let running = self.live.get(key).is_some_and(|live| {
                live.attempt == attempt
                    && live.running.is_some()
                    && !live.timed_out
                    && !live.cancelled
            });
            // An attempt that ended leaves its entry at once, so that a long timeout does not
            // keep one entry per finished job.
            if running && deadline > now {
                break;
            }
            self.timeouts.pop();
            if let (true, Some(live)) = (running, self.live.get_mut(key)) {
                let Some(running) = &live.running else {
                    continue;
                };
                // The timeout counts from when a worker began the call: an attempt still in
                // the queue never times out, and one begun since it was queued has its time
                // from then.
                let timeout = self.shared.timeout.unwrap_or_default();
                let later = match running.begun() {
                    None => Some(after(now, timeout)),
                    Some(begun) => Some(after(begun, timeout)).filter(|due| *due > now),
                };
                if let Some(due) = later {
                    again.push(Reverse((due, place, index, attempt)));
                    continue;
                }
                live.timed_out = true;
                running.flag().cancel();
                self.graces
                    .push_back((after(now, self.shared.grace), key, attempt));
            }
        }
        self.timeouts.extend(again);
        while let Some(&(deadline, key, attempt)) = self.graces.front() {
            if deadline > now {
                break;
            }
            self.graces.pop_front();
            self.abandon(key, attempt);
        }
        while let Some(&Reverse((at, place, index))) = self.backoffs.peek() {
            if at > now {
                break;
            }
            self.backoffs.pop();
            self.due.push_back(Key { place, index });
        }
    }

    /// Gives up on an attempt that did not return within the grace period, unless it has
    /// returned meanwhile.
    fn abandon(&mut self, key: Key, attempt: u32) {
        let Some(live) = self.live.get_mut(key) else {
            return;
        };
        if live.attempt != attempt {
            return;
        }
        let Some(running) = &live.running else {
            return;
        };
        match running.give_up() {
            GiveUp::Returned => return,
            GiveUp::Dropped => {
                // Not reached: a queued attempt is dropped when it is cancelled, before any
                // grace period starts, and one still queued never times out. Had it happened,
                // the job never ran this attempt, and no thread is stuck.
                live.running = None;
                live.attempt -= 1;
                self.slots.release(1);
                self.end_waiting(key);
                return;
            }
            GiveUp::Abandoned => {}
        }
        live.running = None;
        let timed_out = live.timed_out;
        self.slots.release(1);
        self.run.pool.replace_thread(self.lane);
        tracing::warn!(stage = %self.run.id, index = key.index, grace = ?self.shared.grace, "job abandoned: it did not stop within the grace period");
        if timed_out {
            let failure = self.timed_out(false);
            self.failed(key, failure, JobStatus::TimedOut, None);
        } else {
            let grace = humantime::format_duration(self.shared.grace);
            let error = ErrorInfo::fatal(format!(
                "the job did not stop within the grace period of {grace} and was abandoned"
            ));
            self.end(key, JobEnd::new(JobStatus::Abandoned, attempt, Some(error)));
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let timeout = self.timeouts.peek().map(|Reverse((at, ..))| *at);
        let grace = self.graces.front().map(|(at, ..)| *at);
        let backoff = self.backoffs.peek().map(|Reverse((at, ..))| *at);
        [timeout, grace, backoff].into_iter().flatten().min()
    }

    /// Queues every attempt that can start now, in one batch: the retries that are due, then
    /// new jobs while the stage's parallelism allows. Says what stopped it.
    fn queue_jobs(&mut self) -> Blocked {
        let mut tasks: Vec<Task> = Vec::new();
        let mut blocked = Blocked::Nothing;
        loop {
            let retry = self.due.front().copied();
            let can_start =
                !self.stopped && self.next < self.total && self.live.len() < self.parallel;
            if retry.is_none() && !can_start {
                break;
            }
            if self.spare == 0 && !self.take_slots() {
                blocked = Blocked::Slot;
                break;
            }
            if let Some(key) = retry {
                self.due.pop_front();
                tasks.extend(self.retry_job(key));
                continue;
            }
            let permit = match &self.run.run_permits {
                None => None,
                Some(semaphore) => match self
                    .permit
                    .take()
                    .or_else(|| semaphore.clone().try_acquire_owned().ok())
                {
                    Some(permit) => Some(permit),
                    None => {
                        blocked = Blocked::Permit;
                        break;
                    }
                },
            };
            tasks.extend(self.new_job(permit));
        }
        self.run.pool.submit(self.lane, tasks);
        if self.stopped || self.next >= self.total {
            // A place under the workflow's limit that no new job will use goes back now.
            self.permit = None;
        }
        if blocked != Blocked::Slot {
            // Slots not used now are not kept: another stage may need them.
            self.slots.release(self.spare);
            self.spare = 0;
        }
        blocked
    }

    /// Takes as many free pool slots as the jobs that could start now; false if none is free.
    fn take_slots(&mut self) -> bool {
        let new_jobs = if self.stopped {
            0
        } else {
            (self.total - self.next).min(self.parallel.saturating_sub(self.live.len()))
        };
        let wanted = self.due.len() + new_jobs;
        match self.run.pool.try_slots(self.lane, wanted) {
            Some(slots) => {
                self.spare += slots.count();
                self.slots.merge(slots);
                true
            }
            None => false,
        }
    }

    /// Starts the next job of the stage; `None` if its input does not render, which fails it.
    fn new_job(&mut self, permit: Option<OwnedSemaphorePermit>) -> Option<Task> {
        let index = self.next;
        self.next += 1;
        let input = match self.input(index) {
            Ok(input) => input,
            Err(error) => {
                let end = JobEnd::new(JobStatus::Failed, 0, Some(error));
                emit_job_finished(&self.shared, index, &end, None);
                self.count_failure();
                settle(&mut self.record, index, end);
                return None;
            }
        };
        let key = self.live.insert(Live {
            index,
            attempt: 0,
            started: None,
            running: None,
            timed_out: false,
            cancelled: false,
            last: None,
            _permit: permit,
        });
        Some(self.launch(key, input))
    }

    /// Queues another attempt of a job whose backoff is over.
    fn retry_job(&mut self, key: Key) -> Option<Task> {
        // The input is rendered again rather than kept: it is the same, and most jobs never
        // retry.
        match self.input(key.index) {
            Ok(input) => Some(self.launch(key, input)),
            Err(error) => {
                let attempts = self.live.get(key).map_or(0, |live| live.attempt);
                self.end(key, JobEnd::new(JobStatus::Failed, attempts, Some(error)));
                None
            }
        }
    }

    fn input(&self, index: usize) -> Result<Input, ErrorInfo> {
        if let Some(bytes) = &self.literal_input {
            return Ok(Input::Shared(bytes.clone()));
        }
        let item = self
            .shared
            .fan_out
            .then(|| self.record.items.get(index))
            .flatten();
        render(self.template.as_ref(), &self.run.scope, item, index).map(Input::Own)
    }

    /// Makes the next attempt of a live job, to be queued in the pool with a slot taken from
    /// the spare ones.
    fn launch(&mut self, key: Key, input: Input) -> Task {
        // The clock is read only when a timeout or an event needs it.
        let now = (self.shared.timeout.is_some() || self.run.events.is_some()).then(Instant::now);
        let live = self
            .live
            .get_mut(key)
            .unwrap_or_else(|| unreachable!("only live jobs are launched"));
        live.attempt += 1;
        let attempt = Arc::new(Attempt::new(self.shared.clone(), key, live.attempt, input));
        live.started = now;
        live.timed_out = false;
        live.cancelled = false;
        live.running = Some(attempt.clone());
        let number = live.attempt;
        self.spare -= 1;
        if let (Some(timeout), Some(now)) = (self.shared.timeout, now) {
            self.timeouts
                .push(Reverse((after(now, timeout), key.place, key.index, number)));
        }
        // Its `job_started` is written by the worker that begins the call.
        attempt
    }
}

/// Runs a stage to its final state.
pub(crate) async fn run(run: StageRun) -> StageRecord {
    let started = Instant::now();
    let fan_out = run.stage.is_fan_out();
    let mut record = StageRecord::pending(fan_out);
    record.status = StageStatus::Running;

    // Emitted once the items are known, so that the event can say how many jobs follow.
    let items = items(&run);
    emit(&run.events, || {
        let mut event = Event::new(EventKind::StageStarted, &run.run_id);
        event.stage = Some(run.id.clone());
        event.jobs = items
            .as_ref()
            .ok()
            .map(|items| if fan_out { items.len() } else { 1 });
        event
    });
    tracing::info!(stage = %run.id, "stage started");

    let items = match items {
        Ok(items) => items,
        Err(error) => return failed_before_jobs(run, record, error, started),
    };
    let template = match run
        .stage
        .with
        .as_ref()
        .map(|with| Template::compile(eval::shared_environment(), with))
        .transpose()
    {
        Ok(template) => template,
        Err(error) => {
            let error = ErrorInfo::fatal(format!("`with` does not compile: {error}"));
            return failed_before_jobs(run, record, error, started);
        }
    };

    let total = if fan_out { items.len() } else { 1 };
    record.items = Arc::new(items);
    record.outputs = vec![None; total];
    record.jobs = vec![JobStatus::Cancelled; total];

    let lane = if run.plugin.jobs[run.job].waits {
        Lane::Waiting
    } else {
        Lane::Compute
    };
    let defaults = run.defaults.clone().unwrap_or_default();
    let parallel = run
        .stage
        .max_parallel
        .or(defaults.max_parallel)
        .map_or(usize::MAX, |limit| limit.0 as usize)
        .min(run.pool.slots(lane))
        .max(1);
    let retry = run
        .stage
        .retry
        .as_ref()
        .or(defaults.retry.as_ref())
        .map(|retry| retry.policy())
        .unwrap_or_default();
    let allowed = run
        .stage
        .tolerate
        .map_or(0, |tolerate| tolerate.allowed(total));
    let literal_input = match &template {
        Some(template) if template.is_literal() => template
            .render_text(&run.scope, None)
            .ok()
            .map(Arc::<[u8]>::from),
        None => Some(Arc::from(&b"{}"[..])),
        Some(_) => None,
    };
    let shared = Arc::new(Shared {
        plugin: run.plugin.clone(),
        job: run.job,
        run_id: run.run_id.clone(),
        stage_id: run.id.clone(),
        events: run.events.clone(),
        fan_out,
        timeout: run
            .stage
            .timeout
            .or(defaults.timeout)
            .map(|timeout| timeout.get()),
        grace: run.grace,
        epoch: started,
        cancel: CancelFlag::new(),
        inbox: Inbox::default(),
    });

    let jobs = Jobs {
        run,
        shared,
        record,
        template,
        literal_input,
        lane,
        retry,
        total,
        parallel,
        allowed,
        next: 0,
        failures: 0,
        stopped: false,
        cancelled: false,
        halted: false,
        live: Table::default(),
        slots: Slots::default(),
        spare: 0,
        permit: None,
        timeouts: BinaryHeap::new(),
        graces: VecDeque::new(),
        backoffs: BinaryHeap::new(),
        due: VecDeque::new(),
        done: Vec::new(),
        started,
    };
    // On the heap: the loop's state is large, and a stage's task would otherwise reserve room
    // for it beside everything set up above, for each of thousands of stages at once.
    Box::pin(jobs.drive()).await
}

fn items(run: &StageRun) -> Result<Items, ErrorInfo> {
    let items = if let Some(for_each) = &run.stage.for_each {
        eval::for_each_items(for_each, &run.scope)
    } else if let Some(matrix) = &run.stage.matrix {
        eval::matrix_items(matrix, &run.scope).map(Items::Values)
    } else {
        return Ok(Items::default());
    };
    items.map_err(|error| ErrorInfo::fatal(error.to_string()))
}

fn failed_before_jobs(
    run: StageRun,
    mut record: StageRecord,
    error: ErrorInfo,
    started: Instant,
) -> StageRecord {
    tracing::error!(stage = %run.id, error = %error.message, "stage failed before its jobs ran");
    record.status = StageStatus::Failed;
    record.error = Some(error);
    record.elapsed = started.elapsed();
    let _ = run.failed_early.send(run.id.clone());
    emit_stage_finished(&run.events, &run.run_id, &run.id, &record);
    record
}

fn render(
    template: Option<&Template>,
    scope: &Scope,
    item: Option<Item<'_>>,
    index: usize,
) -> Result<Vec<u8>, ErrorInfo> {
    match template {
        Some(template) => template
            .render_text(scope, item.map(|item| (item, index)))
            .map_err(|error| ErrorInfo::fatal(format!("`with` did not render: {error}"))),
        None => Ok(b"{}".to_vec()),
    }
}

/// A failure as reports and expressions show it.
fn error_info(failure: Failure) -> ErrorInfo {
    ErrorInfo {
        message: failure.message,
        retryable: failure.retryable,
        details: failure.details,
    }
}

fn settle(record: &mut StageRecord, index: usize, end: JobEnd) {
    record.attempts += u64::from(end.attempts);
    record.jobs[index] = end.status;
    record.outputs[index] = end.output;
    if let Some(error) = end.error {
        record.errors.insert(index, error);
    }
}

fn emit_job_finished(shared: &Shared, index: usize, end: &JobEnd, started: Option<Instant>) {
    let (status, error) = (end.status, end.error.as_ref());
    if status != JobStatus::Succeeded
        && let Some(error) = error
    {
        tracing::debug!(stage = %shared.stage_id, index, status = %status, error = %error.message, "job finished");
    }
    emit(&shared.events, || {
        let mut event = Event::new(EventKind::JobFinished, &shared.run_id);
        event.stage = Some(shared.stage_id.clone());
        event.index = shared.fan_out.then_some(index);
        event.attempt = Some(end.attempts.max(1));
        event.status = Some(status.as_str());
        event.error = error.cloned();
        let elapsed = started.map_or(Duration::ZERO, |started| started.elapsed());
        event.duration_ms = Some(elapsed.as_secs_f64() * 1000.0);
        event.worker = end.worker;
        event
    });
}

/// `at` plus `duration`, or a time some thirty years ahead when that is past what the clock
/// can hold: a deadline given as `500000000000y` is never reached, and does not overflow.
fn after(at: Instant, duration: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
    at.checked_add(duration)
        .or_else(|| at.checked_add(FAR))
        .unwrap_or(at)
}

/// Resolves when `on_error: finish` halts the run; never for stages that run after a stop.
async fn halted(halt: &Option<CancellationToken>) {
    match halt {
        Some(halt) => halt.cancelled().await,
        None => std::future::pending().await,
    }
}

/// The wait before retry `attempt` (from 1): `delay * factor^(attempt - 1)`, at most
/// `max_delay`, with full jitter (a uniform draw between zero and that).
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
    let ceiling = policy.delay.get().as_secs_f64() * policy.factor.max(1.0).powi(exponent);
    let ceiling = ceiling.min(policy.max_delay.get().as_secs_f64());
    Duration::try_from_secs_f64(ceiling * fastrand::f64()).unwrap_or(Duration::MAX)
}

/// Emits the `stage_finished` event of a record.
pub(crate) fn emit_stage_finished(
    events: &Option<Arc<dyn EventSink>>,
    run_id: &Arc<str>,
    stage: &Arc<str>,
    record: &StageRecord,
) {
    emit(events, || {
        let mut event = Event::new(EventKind::StageFinished, run_id);
        event.stage = Some(stage.clone());
        event.status = Some(record.status.as_str());
        event.error = record.error.clone();
        event.duration_ms = Some(record.elapsed.as_secs_f64() * 1000.0);
        event
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_the_factor_and_stays_under_the_cap() {
        let policy = RetryPolicy {
            attempts: 10,
            delay: weft_spec::Duration::from_millis(100),
            factor: 2.0,
            max_delay: weft_spec::Duration::from_millis(500),
        };

        for _ in 0..100 {
            assert!(backoff(&policy, 1) <= Duration::from_millis(100));
            assert!(backoff(&policy, 3) <= Duration::from_millis(400));
            assert!(backoff(&policy, 10) <= Duration::from_millis(500));
        }
    }
}
