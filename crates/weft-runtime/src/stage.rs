//! One stage at run time: its items, its jobs streamed into the pool, each job's attempts
//! with retries, timeouts and cancellation, and the stage's final state.
//!
//! A fan-out never holds more than its parallelism of rendered inputs: an item's input is
//! rendered when its job is about to be queued, and the number of jobs in flight is bounded
//! by the stage's `max_parallel` and by the pool's slots.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use weft_host::{CallOptions, CancelFlag, Failure, FailureKind, LogLevel, Plugin};
use weft_spec::{Defaults, RetryPolicy, Stage};

use crate::eval::{self, Scope, Template};
use crate::events::{Event, EventKind, EventSink, WorkerSpan};
use crate::pool::{Lane, Pool};
use crate::run::emit;
use crate::state::{ErrorInfo, JobStatus, Output, StageRecord, StageStatus};

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

/// The number of the worker thread running this code: from 1, in the order threads first
/// ran a job.
fn worker_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static NUMBER: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|number| *number)
}

/// What one job shares with the others of its stage.
struct JobShared {
    run: StageRun,
    lane: Lane,
    timeout: Option<Duration>,
    retry: RetryPolicy,
    fan_out: bool,
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

    let jobs = if fan_out { items.len() } else { 1 };
    record.items = Arc::new(items);
    record.outputs = vec![None; jobs];
    record.jobs = vec![JobStatus::Cancelled; jobs];

    let descriptor = &run.plugin.jobs[run.job];
    let lane = if descriptor.waits {
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
    let shared = Arc::new(JobShared {
        lane,
        timeout: run
            .stage
            .timeout
            .or(defaults.timeout)
            .map(|timeout| timeout.get()),
        retry: run
            .stage
            .retry
            .as_ref()
            .or(defaults.retry.as_ref())
            .map(|retry| retry.policy())
            .unwrap_or_default(),
        fan_out,
        run,
    });
    let allowed = shared
        .run
        .stage
        .tolerate
        .map_or(0, |tolerate| tolerate.allowed(jobs));

    let literal_input = match &template {
        Some(template) if template.is_literal() => template
            .render_text(&shared.run.scope, None)
            .ok()
            .map(Arc::<[u8]>::from),
        None => Some(Arc::from(&b"{}"[..])),
        Some(_) => None,
    };

    let permits = Arc::new(Semaphore::new(parallel));
    let mut in_flight: JoinSet<(usize, JobEnd)> = JoinSet::new();
    let mut next = 0;
    let mut failures = 0;
    let mut stopped = false;

    loop {
        let can_start = next < jobs && !stopped;
        if !can_start && in_flight.is_empty() {
            break;
        }
        let halt = shared.run.halt.clone();

        tokio::select! {
            biased;

            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                let (index, end) = joined.unwrap_or_else(|error| {
                    (usize::MAX, JobEnd::new(JobStatus::Failed, 0, Some(ErrorInfo::fatal(format!("the job's task failed: {error}")))))
                });
                if index == usize::MAX {
                    continue;
                }
                if end.status.counts_as_failure() {
                    failures += 1;
                    if failures > allowed && !stopped {
                        stopped = true;
                        let _ = shared.run.failed_early.send(shared.run.id.clone());
                    }
                }
                settle(&mut record, index, end);
            }
            () = shared.run.token.cancelled(), if !stopped => {
                stopped = true;
            }
            () = halted(&halt), if !stopped => {
                stopped = true;
            }
            permits = acquire(&permits, &shared.run.run_permits), if can_start => {
                let index = next;
                next += 1;
                let item = fan_out.then(|| &record.items[index]);
                let input = match &literal_input {
                    Some(bytes) => Ok(bytes.clone()),
                    None => render(template.as_ref(), &shared.run.scope, item, index),
                };
                match input {
                    Ok(input) => {
                        let shared = shared.clone();
                        in_flight.spawn_local(async move {
                            let end = job(&shared, index, input).await;
                            drop(permits);
                            (index, end)
                        });
                    }
                    Err(error) => {
                        failures += 1;
                        if failures > allowed && !stopped {
                            stopped = true;
                            let _ = shared.run.failed_early.send(shared.run.id.clone());
                        }
                        let end = JobEnd::new(JobStatus::Failed, 0, Some(error));
                        emit_job_finished(&shared, index, &end, Duration::ZERO);
                        settle(&mut record, index, end);
                    }
                }
            }
        }
    }

    record.status = if failures > allowed {
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
    record.elapsed = started.elapsed();
    emit_stage_finished(
        &shared.run.events,
        &shared.run.run_id,
        &shared.run.id,
        &record,
    );
    tracing::info!(stage = %shared.run.id, status = %record.status, elapsed = ?record.elapsed, "stage finished");
    record
}

fn items(run: &StageRun) -> Result<Vec<Value>, ErrorInfo> {
    let items = if let Some(for_each) = &run.stage.for_each {
        eval::for_each_items(for_each, &run.scope)
    } else if let Some(matrix) = &run.stage.matrix {
        eval::matrix_items(matrix, &run.scope)
    } else {
        return Ok(Vec::new());
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
    item: Option<&Value>,
    index: usize,
) -> Result<Arc<[u8]>, ErrorInfo> {
    match template {
        Some(template) => template
            .render_text(scope, item.map(|item| (item, index)))
            .map(Arc::from)
            .map_err(|error| ErrorInfo::fatal(format!("`with` did not render: {error}"))),
        None => Ok(Arc::from(&b"{}"[..])),
    }
}

async fn acquire(
    stage: &Arc<Semaphore>,
    run: &Option<Arc<Semaphore>>,
) -> (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>) {
    let closed = |_| unreachable!("the run's semaphores are never closed");
    let stage = stage.clone().acquire_owned().await.unwrap_or_else(closed);
    let run = match run {
        Some(run) => Some(run.clone().acquire_owned().await.unwrap_or_else(closed)),
        None => None,
    };
    (stage, run)
}

fn settle(record: &mut StageRecord, index: usize, end: JobEnd) {
    record.attempts += u64::from(end.attempts);
    record.jobs[index] = end.status;
    record.outputs[index] = end.output;
    if let Some(error) = end.error {
        record.errors.insert(index, error);
    }
}

/// What waiting for an attempt gave.
enum Waited {
    Returned(Result<Output, Failure>, WorkerSpan),
    Lost,
    TimedOut,
    Cancelled,
}

/// Runs one job: its attempts, with timeouts, retries and cancellation.
async fn job(shared: &JobShared, index: usize, input: Arc<[u8]>) -> JobEnd {
    let run = &shared.run;
    let retries = shared.retry.attempts;
    let mut last_error = None;
    let mut attempt = 0;

    loop {
        attempt += 1;
        let mut worker = None;
        let started = Instant::now();
        if run.token.is_cancelled() {
            return finished(
                shared,
                index,
                JobEnd::new(JobStatus::Cancelled, attempt - 1, last_error),
                started,
            );
        }

        let slot = tokio::select! {
            slot = run.pool.slot(shared.lane) => slot,
            () = run.token.cancelled() => {
                return finished(shared, index, JobEnd::new(JobStatus::Cancelled, attempt - 1, last_error), started);
            }
            () = halted(&run.halt) => {
                // `on_error: finish`: a job that has not reached the pool does not start; one
                // that has failed before keeps its failure.
                let status = if last_error.is_some() { JobStatus::Failed } else { JobStatus::Cancelled };
                return finished(shared, index, JobEnd::new(status, attempt - 1, last_error), started);
            }
        };
        emit(&run.events, || {
            let mut event = Event::new(EventKind::JobStarted, &run.run_id);
            event.stage = Some(run.id.clone());
            event.index = shared.fan_out.then_some(index);
            event.attempt = Some(attempt);
            event
        });

        let flag = Arc::new(CancelFlag::new());
        let (sender, mut receiver) = oneshot::channel();
        let call = {
            let (flag, input, plugin) = (flag.clone(), input.clone(), run.plugin.clone());
            let (job, run_id, stage_id, events) = (
                run.job,
                run.run_id.clone(),
                run.id.clone(),
                run.events.clone(),
            );
            let (timeout, grace) = (shared.timeout, run.grace);
            let item = shared.fan_out.then_some(index as u64);
            move || {
                let log = |level: LogLevel, message: &str| {
                    plugin_log(&events, &run_id, &stage_id, item, level, message)
                };
                let options = CallOptions {
                    cancel: &flag,
                    timeout,
                    grace,
                    attempt,
                    run_id: &run_id,
                    stage_id: &stage_id,
                    index: item,
                    log: &log,
                };
                let start = SystemTime::now();
                let clock = Instant::now();
                let result = plugin.jobs[job].call_raw(&input, &options);
                let span = WorkerSpan {
                    thread: worker_number(),
                    start,
                    call_ms: clock.elapsed().as_secs_f64() * 1000.0,
                };
                let _ = sender.send((result, span));
            }
        };
        let ticket = run.pool.run(slot, call);

        let deadline = async {
            match shared.timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        let waited = tokio::select! {
            result = &mut receiver => result.map_or(Waited::Lost, |(result, span)| Waited::Returned(result, span)),
            () = deadline => Waited::TimedOut,
            () = run.token.cancelled() => Waited::Cancelled,
        };

        let (failure, timed_out) = match waited {
            Waited::Returned(Ok(output), span) => {
                let mut end = JobEnd::new(JobStatus::Succeeded, attempt, None).on(Some(span));
                end.output = Some(output);
                return finished(shared, index, end, started);
            }
            Waited::Returned(Err(failure), span) => {
                worker = Some(span);
                (failure, false)
            }
            Waited::Lost => {
                let failure = Failure {
                    kind: FailureKind::Error,
                    message: "the job's thread ended without an answer".to_owned(),
                    retryable: false,
                    details: None,
                };
                (failure, false)
            }
            Waited::TimedOut | Waited::Cancelled => {
                let timed_out = matches!(waited, Waited::TimedOut);
                flag.cancel();
                let returned = tokio::time::timeout(run.grace, &mut receiver).await.is_ok();
                let grace = humantime::format_duration(run.grace);
                if !returned {
                    ticket.abandon(&run.pool);
                    tracing::warn!(stage = %run.id, index, grace = ?run.grace, "job abandoned: it did not stop within the grace period");
                }
                if !returned && !timed_out {
                    let error = ErrorInfo::fatal(format!(
                        "the job did not stop within the grace period of {grace} and was abandoned"
                    ));
                    return finished(
                        shared,
                        index,
                        JobEnd::new(JobStatus::Abandoned, attempt, Some(error)),
                        started,
                    );
                }
                if !timed_out {
                    return finished(
                        shared,
                        index,
                        JobEnd::new(JobStatus::Cancelled, attempt, last_error),
                        started,
                    );
                }
                // A timed-out attempt is a failure whether or not it stopped; one that did not
                // stop has left its thread behind, which the pool replaced.
                let limit = humantime::format_duration(shared.timeout.unwrap_or_default());
                let message = if returned {
                    format!("timed out after {limit}")
                } else {
                    format!(
                        "timed out after {limit}, and did not stop within the grace period of {grace}: its thread was abandoned"
                    )
                };
                let failure = Failure {
                    kind: FailureKind::Error,
                    message,
                    retryable: true,
                    details: None,
                };
                (failure, true)
            }
        };

        if failure.kind == FailureKind::Cancelled && run.token.is_cancelled() {
            return finished(
                shared,
                index,
                JobEnd::new(JobStatus::Cancelled, attempt, last_error),
                started,
            );
        }
        let status = if timed_out {
            JobStatus::TimedOut
        } else {
            JobStatus::Failed
        };
        let error = ErrorInfo {
            message: failure.message,
            retryable: failure.retryable,
            details: failure.details,
        };

        let halt = run
            .halt
            .as_ref()
            .is_some_and(CancellationToken::is_cancelled);
        if !error.retryable || attempt > retries || halt || run.token.is_cancelled() {
            return finished(
                shared,
                index,
                JobEnd::new(status, attempt, Some(error)).on(worker),
                started,
            );
        }

        let delay = backoff(&shared.retry, attempt);
        tracing::info!(stage = %run.id, index, attempt, delay = ?delay, error = %error.message, "retrying");
        emit(&run.events, || {
            let mut event = Event::new(EventKind::JobRetrying, &run.run_id);
            event.stage = Some(run.id.clone());
            event.index = shared.fan_out.then_some(index);
            event.attempt = Some(attempt);
            event.error = Some(error.clone());
            event.duration_ms = Some(delay.as_secs_f64() * 1000.0);
            event.worker = worker;
            event
        });
        last_error = Some(error);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = run.token.cancelled() => {
                return finished(shared, index, JobEnd::new(JobStatus::Cancelled, attempt, last_error), started);
            }
            () = halted(&run.halt) => {
                // `on_error: finish` starts no new retry: the job ends with its last failure.
                return finished(shared, index, JobEnd::new(status, attempt, last_error).on(worker), started);
            }
        }
    }
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
    Duration::from_secs_f64(ceiling * fastrand::f64())
}

fn finished(shared: &JobShared, index: usize, end: JobEnd, started: Instant) -> JobEnd {
    emit_job_finished(shared, index, &end, started.elapsed());
    end
}

fn emit_job_finished(shared: &JobShared, index: usize, end: &JobEnd, elapsed: Duration) {
    let (status, error) = (end.status, end.error.as_ref());
    let run = &shared.run;
    if status != JobStatus::Succeeded
        && let Some(error) = error
    {
        tracing::debug!(stage = %run.id, index, status = %status, error = %error.message, "job finished");
    }
    emit(&run.events, || {
        let mut event = Event::new(EventKind::JobFinished, &run.run_id);
        event.stage = Some(run.id.clone());
        event.index = shared.fan_out.then_some(index);
        event.attempt = Some(end.attempts.max(1));
        event.status = Some(status.as_str());
        event.error = error.cloned();
        event.duration_ms = Some(elapsed.as_secs_f64() * 1000.0);
        event.worker = end.worker;
        event
    });
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
