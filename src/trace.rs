//! `--trace FILE`: the run as a Chrome trace (the trace-event JSON format that Perfetto and
//! `chrome://tracing` open), to see the schedule as a timeline.
//!
//! One process (`pid` 1) holds these threads (`tid`s), each named by a `thread_name`
//! metadata event:
//!
//! - `0`, "run": one span for the whole run;
//! - one thread per stage, "stage ID", from [`STAGE_TIDS`] on in the plan's order: the
//!   stage's span. Stages get a thread each because stages that run at the same time overlap
//!   without nesting, which a single thread cannot show;
//! - one thread per worker, "worker N", with `tid` N, the worker's number in the events: a
//!   span per job attempt, `stage[index]` (or `stage` for a single job), from the call's
//!   start to its return as the worker measured them;
//! - [`UNPLACED`], "attempts without a worker": attempts whose call did not return to the
//!   scheduler (timed out, cancelled, abandoned), from their start to their end as the
//!   scheduler saw them.
//!
//! Times are in microseconds from the run's start. [`Trace`] is an event sink that keeps a
//! few words per attempt while the run goes, and writes the file when the run ends.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use weft_runtime::{Event, EventKind, EventSink};

/// The process every event belongs to.
const PID: u32 = 1;

/// The thread of the run's span.
const RUN_TID: u64 = 0;

/// The thread of the first stage; the next stages follow in the plan's order.
pub const STAGE_TIDS: u64 = 1_000_000;

/// The thread of the attempts whose call did not return: their worker is not known.
pub const UNPLACED: u64 = 999_999;

/// Collects a run's spans and writes them as a Chrome trace.
pub struct Trace {
    file: Mutex<Option<File>>,
    title: String,
    recorded: Mutex<Recorded>,
}

/// What the trace has seen so far.
#[derive(Default)]
struct Recorded {
    /// When the run started: time zero of the trace.
    origin: Option<SystemTime>,
    /// When the run ended, and how.
    end: Option<(SystemTime, &'static str)>,
    /// Stages in the plan's order; a stage's thread is its place here.
    stages: Vec<Arc<str>>,
    /// Worker numbers seen.
    workers: BTreeSet<u64>,
    /// When each attempt in flight started, as the scheduler saw it, by stage and item.
    open: HashMap<(Arc<str>, usize), SystemTime>,
    spans: Vec<Span>,
}

/// One complete event.
struct Span {
    what: What,
    tid: u64,
    start: SystemTime,
    took: Duration,
    status: &'static str,
}

/// What a span stands for.
enum What {
    Stage(Arc<str>),
    Attempt {
        stage: Arc<str>,
        index: Option<usize>,
        attempt: u32,
        retried: bool,
        error: Option<String>,
    },
}

impl Trace {
    /// Creates (or truncates) the trace file now, so that a path that cannot be written is
    /// reported before the run; the trace is written by [`Trace::write`]. `title` names the
    /// process and the run's span; `stages`, in the plan's order, get a thread each.
    pub fn create(path: &Path, title: &str, stages: &[&str]) -> io::Result<Self> {
        Ok(Self {
            file: Mutex::new(Some(File::create(path)?)),
            title: title.to_owned(),
            recorded: Mutex::new(Recorded::new(stages)),
        })
    }

    /// Writes the trace to its file. Call once, after the run.
    pub fn write(&self) -> io::Result<()> {
        let Some(file) = self
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Ok(());
        };
        let recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);

        let mut out = BufWriter::new(file);
        out.write_all(b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n")?;
        let mut first = true;
        for event in recorded.metadata(&self.title) {
            entry(&mut out, &mut first, &event)?;
        }
        if let Some(run) = recorded.run_span(&self.title) {
            entry(&mut out, &mut first, &run)?;
        }
        for span in &recorded.spans {
            entry(&mut out, &mut first, &recorded.span(span))?;
        }
        out.write_all(b"\n]}\n")?;
        out.flush()
    }
}

/// Writes one element of the events array.
fn entry(out: &mut impl Write, first: &mut bool, event: &Value) -> io::Result<()> {
    if !std::mem::take(first) {
        out.write_all(b",\n")?;
    }
    serde_json::to_writer(&mut *out, event)?;
    Ok(())
}

impl EventSink for Trace {
    fn emit(&self, event: Event) {
        let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        recorded.record(event);
    }
}

impl Recorded {
    fn new(stages: &[&str]) -> Self {
        Self {
            stages: stages.iter().map(|stage| Arc::from(*stage)).collect(),
            ..Self::default()
        }
    }

    /// The thread of a stage's span: its place in the plan, or a new one after the others.
    fn stage_tid(&mut self, stage: &Arc<str>) -> u64 {
        let at = match self.stages.iter().position(|known| known == stage) {
            Some(at) => at,
            None => {
                self.stages.push(stage.clone());
                self.stages.len() - 1
            }
        };
        STAGE_TIDS + at as u64
    }

    fn record(&mut self, event: Event) {
        self.origin.get_or_insert(event.ts);

        match event.kind {
            EventKind::RunFinished => {
                self.end = Some((event.ts, event.status.unwrap_or("finished")));
            }
            EventKind::StageFinished => {
                let Some(stage) = event.stage else { return };
                let took = millis(event.duration_ms);
                let tid = self.stage_tid(&stage);
                self.spans.push(Span {
                    what: What::Stage(stage),
                    tid,
                    start: event.ts.checked_sub(took).unwrap_or(event.ts),
                    took,
                    status: event.status.unwrap_or("finished"),
                });
            }
            EventKind::JobStarted => {
                if let Some(stage) = event.stage {
                    self.open
                        .insert((stage, event.index.unwrap_or(0)), event.ts);
                }
            }
            EventKind::JobRetrying | EventKind::JobFinished => self.attempt(event),
            EventKind::RunStarted | EventKind::StageStarted | EventKind::Log => {}
        }
    }

    /// Records the span of the attempt an event ends: on its worker when the worker measured
    /// it, else from its start as the scheduler saw it; nothing for a job that never started.
    fn attempt(&mut self, event: Event) {
        let Some(stage) = event.stage else { return };
        let opened = self.open.remove(&(stage.clone(), event.index.unwrap_or(0)));
        let retried = event.kind == EventKind::JobRetrying;

        let (tid, start, took) = match (event.worker, opened) {
            (Some(worker), _) => {
                self.workers.insert(worker.thread);
                let took = Duration::from_secs_f64(worker.call_ms.max(0.0) / 1000.0);
                (worker.thread, worker.start, took)
            }
            (None, Some(opened)) => {
                let took = event.ts.duration_since(opened).unwrap_or_default();
                (UNPLACED, opened, took)
            }
            (None, None) => return,
        };
        let status = if retried {
            "failed"
        } else {
            event.status.unwrap_or("finished")
        };
        self.spans.push(Span {
            what: What::Attempt {
                stage,
                index: event.index,
                attempt: event.attempt.unwrap_or(1),
                retried,
                error: event
                    .error
                    .map(|error| error.message.lines().next().unwrap_or_default().to_owned()),
            },
            tid,
            start,
            took,
            status,
        });
    }

    /// Microseconds from the run's start to `time`.
    fn micros(&self, time: SystemTime) -> f64 {
        let origin = self.origin.unwrap_or(time);
        let since = time.duration_since(origin).unwrap_or_default();
        (since.as_secs_f64() * 1e9).round() / 1e3
    }

    /// The process's and the threads' names and order.
    fn metadata(&self, title: &str) -> Vec<Value> {
        let mut threads = vec![(RUN_TID, "run".to_owned())];
        threads.extend(
            self.stages
                .iter()
                .enumerate()
                .map(|(at, stage)| (STAGE_TIDS + at as u64, format!("stage {stage}"))),
        );
        if self.spans.iter().any(|span| span.tid == UNPLACED) {
            threads.push((UNPLACED, "attempts without a worker".to_owned()));
        }
        threads.extend(
            self.workers
                .iter()
                .map(|worker| (*worker, format!("worker {worker}"))),
        );

        let mut events = vec![json!({
            "ph": "M", "name": "process_name", "pid": PID, "tid": RUN_TID,
            "args": {"name": format!("weft run {title}")},
        })];
        for (order, (tid, name)) in threads.into_iter().enumerate() {
            events.push(json!({
                "ph": "M", "name": "thread_name", "pid": PID, "tid": tid,
                "args": {"name": name},
            }));
            events.push(json!({
                "ph": "M", "name": "thread_sort_index", "pid": PID, "tid": tid,
                "args": {"sort_index": order},
            }));
        }
        events
    }

    /// The run's span, once the run has ended.
    fn run_span(&self, title: &str) -> Option<Value> {
        let (origin, (end, status)) = (self.origin?, self.end?);
        Some(json!({
            "ph": "X", "cat": "run", "name": title, "pid": PID, "tid": RUN_TID,
            "ts": 0.0, "dur": self.micros(end) - self.micros(origin),
            "args": {"status": status},
        }))
    }

    /// A recorded span as a complete event.
    fn span(&self, span: &Span) -> Value {
        let (category, name, args) = match &span.what {
            What::Stage(stage) => ("stage", stage.to_string(), json!({"status": span.status})),
            What::Attempt {
                stage,
                index,
                attempt,
                retried,
                error,
            } => {
                let name = match index {
                    Some(index) => format!("{stage}[{index}]"),
                    None => stage.to_string(),
                };
                let mut args = json!({"attempt": attempt, "status": span.status});
                if *retried {
                    args["retried"] = Value::Bool(true);
                }
                if let Some(error) = error {
                    args["error"] = Value::String(error.clone());
                }
                ("job", name, args)
            }
        };
        json!({
            "ph": "X", "cat": category, "name": name, "pid": PID, "tid": span.tid,
            "ts": self.micros(span.start), "dur": (span.took.as_secs_f64() * 1e9).round() / 1e3,
            "args": args,
        })
    }
}

/// A duration given in milliseconds, if any.
fn millis(value: Option<f64>) -> Duration {
    Duration::from_secs_f64(value.unwrap_or(0.0).max(0.0) / 1000.0)
}

#[cfg(test)]
mod tests {
    use weft_runtime::{ErrorInfo, WorkerSpan};

    use super::*;

    fn at(base: SystemTime, millis: u64) -> SystemTime {
        base + Duration::from_millis(millis)
    }

    /// A run of one single-job stage whose first attempt fails on worker 2 and is retried,
    /// and whose second attempt times out.
    fn events(base: SystemTime) -> Vec<Event> {
        let run: Arc<str> = Arc::from("r1");
        let stage: Arc<str> = Arc::from("flaky");
        let event = |kind, millis| {
            let mut event = Event::new(kind, &run);
            event.ts = at(base, millis);
            if kind != EventKind::RunStarted && kind != EventKind::RunFinished {
                event.stage = Some(stage.clone());
            }
            event
        };

        let mut retrying = event(EventKind::JobRetrying, 30);
        retrying.attempt = Some(1);
        retrying.error = Some(ErrorInfo::fatal("503\nmore"));
        retrying.worker = Some(WorkerSpan {
            thread: 2,
            start: at(base, 10),
            call_ms: 15.0,
        });
        let mut finished = event(EventKind::JobFinished, 90);
        finished.attempt = Some(2);
        finished.status = Some("timed_out");
        let mut stage_finished = event(EventKind::StageFinished, 91);
        stage_finished.status = Some("failed");
        stage_finished.duration_ms = Some(90.0);
        let mut run_finished = event(EventKind::RunFinished, 95);
        run_finished.status = Some("failed");

        vec![
            event(EventKind::RunStarted, 0),
            event(EventKind::StageStarted, 1),
            event(EventKind::JobStarted, 5),
            retrying,
            event(EventKind::JobStarted, 40),
            finished,
            stage_finished,
            run_finished,
        ]
    }

    #[test]
    fn attempts_go_on_their_worker_or_on_the_unplaced_thread_with_times_from_the_run_start() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut recorded = Recorded::new(&["flaky"]);
        for event in events(base) {
            recorded.record(event);
        }

        let spans: Vec<Value> = recorded
            .spans
            .iter()
            .map(|span| recorded.span(span))
            .collect();

        assert_eq!(spans.len(), 3);
        assert_eq!(spans[0]["name"], "flaky");
        assert_eq!(spans[0]["tid"], 2);
        assert_eq!(spans[0]["ts"], 10_000.0);
        assert_eq!(spans[0]["dur"], 15_000.0);
        assert_eq!(
            spans[0]["args"],
            json!({"attempt": 1, "status": "failed", "retried": true, "error": "503"})
        );
        assert_eq!(spans[1]["tid"], UNPLACED);
        assert_eq!(spans[1]["ts"], 40_000.0);
        assert_eq!(spans[1]["dur"], 50_000.0);
        assert_eq!(spans[1]["args"]["status"], "timed_out");
        assert_eq!(spans[2]["cat"], "stage");
        assert_eq!(spans[2]["tid"], STAGE_TIDS);
        assert_eq!(spans[2]["ts"], 1_000.0);
        assert_eq!(recorded.run_span("t").unwrap()["dur"], 95_000.0);
    }

    #[test]
    fn every_thread_used_is_named() {
        let base = SystemTime::UNIX_EPOCH;
        let mut recorded = Recorded::new(&["never_ran", "flaky"]);
        for event in events(base) {
            recorded.record(event);
        }

        let names: Vec<(u64, String)> = recorded
            .metadata("t")
            .iter()
            .filter(|event| event["name"] == "thread_name")
            .map(|event| {
                let tid = event["tid"].as_u64().unwrap();
                (tid, event["args"]["name"].as_str().unwrap().to_owned())
            })
            .collect();

        assert_eq!(
            names,
            [
                (RUN_TID, "run".to_owned()),
                (STAGE_TIDS, "stage never_ran".to_owned()),
                (STAGE_TIDS + 1, "stage flaky".to_owned()),
                (UNPLACED, "attempts without a worker".to_owned()),
                (2, "worker 2".to_owned()),
            ]
        );
    }
}
