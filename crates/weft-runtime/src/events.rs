//! What a run tells the world as it goes: one [`Event`] per state change of the run, a stage
//! or a job, and per plugin log line.
//!
//! The events file (`--events FILE`) is a public interface: one JSON object per line, each
//! with `"v": 1`. Fields are only ever added within a version, never renamed.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::state::ErrorInfo;

/// The version of the events format, written on every line.
pub const EVENTS_VERSION: u32 = 1;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The run began.
    RunStarted,
    /// A stage began (its `if` held).
    StageStarted,
    /// An attempt of a job began: a worker thread began its call. An attempt dropped from
    /// the queue by a cancellation has none.
    JobStarted,
    /// A job reached its final state.
    JobFinished,
    /// An attempt of a job failed and another will follow after a delay.
    JobRetrying,
    /// A stage reached its final state (including skipped and cancelled stages).
    StageFinished,
    /// The run ended.
    RunFinished,
    /// A plugin wrote a log line.
    Log,
}

/// One line of the events file.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// [`EVENTS_VERSION`].
    pub v: u32,
    /// When, written in RFC 3339 with microseconds.
    #[serde(serialize_with = "rfc3339")]
    pub ts: SystemTime,
    /// What happened.
    pub kind: EventKind,
    /// The run's id.
    pub run: Arc<str>,
    /// The stage, for stage and job events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<Arc<str>>,
    /// The item's index, for job events of a fan-out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// How many jobs the stage runs, for `stage_started` events of stages whose items could
    /// be computed: the fan-out's item count, or 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<usize>,
    /// The attempt, from 1, for job events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The final state, for `*_finished` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
    /// A log line's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A log line's level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<&'static str>,
    /// How long it took, for `*_finished` events, and the wait before a retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// Where the job's last attempt ran, for `job_finished` and `job_retrying` events of jobs
    /// that reached a worker thread: the thread, and the attempt's start and end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerSpan>,
}

/// An attempt as its worker thread saw it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct WorkerSpan {
    /// The worker thread, numbered from 1 in the order threads first ran a job.
    pub thread: u64,
    /// When the call began.
    #[serde(serialize_with = "rfc3339")]
    pub start: SystemTime,
    /// How long the call took, in milliseconds.
    pub call_ms: f64,
}

fn rfc3339<S: serde::Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_micros(*time))
}

impl Event {
    /// An event of `kind` in run `run`, now, with no other field.
    pub fn new(kind: EventKind, run: &Arc<str>) -> Self {
        Self {
            v: EVENTS_VERSION,
            ts: SystemTime::now(),
            kind,
            run: run.clone(),
            stage: None,
            index: None,
            jobs: None,
            attempt: None,
            status: None,
            error: None,
            message: None,
            level: None,
            duration_ms: None,
            worker: None,
        }
    }
}

/// Where events go. Implementations must be quick: they are called from the scheduler, and
/// from worker threads (`job_started`, as a worker begins a call, and plugin log lines).
pub trait EventSink: Send + Sync {
    /// Takes one event.
    fn emit(&self, event: Event);
}

/// Writes events to a file, one JSON line each, from a thread of its own: buffered, and
/// flushed at least every 100 ms and when it is closed.
pub struct EventsFile {
    sender: Mutex<Option<mpsc::Sender<Event>>>,
    writer: Mutex<Option<JoinHandle<io::Result<()>>>>,
}

impl EventsFile {
    /// Creates (or truncates) the file and starts its writer.
    pub fn create(path: &Path) -> io::Result<Self> {
        let file = File::create(path)?;
        let (sender, receiver) = mpsc::channel::<Event>();
        let writer = std::thread::Builder::new()
            .name("weft-events".to_owned())
            .spawn(move || write_events(BufWriter::new(file), &receiver))?;
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Writes what is left and closes the file.
    pub fn close(&self) -> io::Result<()> {
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match writer.map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the events writer panicked")),
            None => Ok(()),
        }
    }
}

impl EventSink for EventsFile {
    fn emit(&self, event: Event) {
        if let Some(sender) = self
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let _ = sender.send(event);
        }
    }
}

const FLUSH_EVERY: Duration = Duration::from_millis(100);

fn write_events(mut out: BufWriter<File>, events: &mpsc::Receiver<Event>) -> io::Result<()> {
    let mut flushed = Instant::now();
    loop {
        match events.recv_timeout(FLUSH_EVERY) {
            Ok(event) => {
                serde_json::to_writer(&mut out, &event)?;
                out.write_all(b"\n")?;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if flushed.elapsed() >= FLUSH_EVERY {
            out.flush()?;
            flushed = Instant::now();
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_written_one_json_line_each_with_the_version() {
        let path = std::env::temp_dir().join(format!("weft-events-{}.jsonl", std::process::id()));
        let file = EventsFile::create(&path).unwrap();
        let run: Arc<str> = Arc::from("r1");
        let mut event = Event::new(EventKind::StageFinished, &run);
        event.stage = Some(Arc::from("count"));
        event.status = Some("succeeded");

        file.emit(Event::new(EventKind::RunStarted, &run));
        file.emit(event);
        file.close().unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["v"], 1);
        assert_eq!(lines[0]["kind"], "run_started");
        assert_eq!(lines[1]["stage"], "count");
        assert_eq!(lines[1]["status"], "succeeded");
        assert!(lines[1].get("index").is_none());
        assert!(lines[0]["ts"].as_str().unwrap().ends_with('Z'));
    }
}
