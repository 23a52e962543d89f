//! Progress on stderr while a run goes: one line per stage with its state, its jobs done out
//! of the total, the jobs running, failed and retried, and the time since it started.
//!
//! [`Progress`] is an event sink. Its `emit` only updates the tally of one stage, under a lock
//! held for a few counter updates; it never formats or draws. The lines are drawn by
//! indicatif's steady tick, ten times a second on indicatif's own thread, which reads the
//! tallies. So a fan-out of a million jobs costs a lookup and a few additions per event,
//! however fast the events come.
//!
//! While the display is up, log lines and messages must not be written to stderr directly,
//! or the next redraw would overwrite them: they go through [`suspend`] (and the log
//! subscriber through [`LogWriter`]), which lifts the display, writes, and puts it back.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use weft_runtime::{Event, EventKind, EventSink};

use crate::summary;

/// How often the display is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// The frames of a running stage's mark, one per tick.
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// The width of a stage's bar, in characters.
const BAR: usize = 20;

/// The display of the run in progress, if one is up: what [`suspend`] lifts.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `write` with the progress display lifted, so that what it writes on stderr is not
/// drawn over. Without a display, runs it as it is.
pub fn suspend<R>(write: impl FnOnce() -> R) -> R {
    let active = ACTIVE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    match active {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// Stderr for the log subscriber: each line is written with the progress display lifted.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        suspend(|| io::stderr().lock().write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        suspend(|| io::stderr().lock().write_all(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// The progress display of one run.
pub struct Progress {
    board: Arc<Board>,
    bar: ProgressBar,
}

impl Progress {
    /// Puts up a display with one line per stage of `stages`, in that order, on stderr.
    pub fn start(stages: &[&str]) -> Self {
        let board = Arc::new(Board::new(stages));
        let lines = {
            let board = board.clone();
            move |_: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = out.write_str(&board.render(board.origin.elapsed()));
            }
        };
        let style = ProgressStyle::with_template("{lines}")
            .expect("the template is valid")
            .with_key("lines", lines);
        let bar =
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(style);
        bar.enable_steady_tick(TICK);
        *ACTIVE.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar.clone());
        Self { board, bar }
    }

    /// Takes the display down, leaving the terminal as it was before it went up.
    pub fn finish(&self) {
        ACTIVE.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.bar.finish_and_clear();
    }
}

impl EventSink for Progress {
    fn emit(&self, event: Event) {
        self.board.record(&event);
    }
}

/// Every stage's tally, in display order.
struct Board {
    origin: Instant,
    stages: Vec<(String, Mutex<Tally>)>,
    index: HashMap<String, usize>,
    width: usize,
}

/// Where a stage is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Not started.
    #[default]
    Waiting,
    /// Started, not final.
    Running,
    /// Final, with the status of its `stage_finished` event.
    Done(&'static str),
}

/// What the display knows of one stage.
#[derive(Debug, Default)]
struct Tally {
    phase: Phase,
    /// The jobs the stage runs, once its items are known.
    jobs: Option<usize>,
    /// Jobs in a final state.
    finished: usize,
    /// Jobs that failed or timed out.
    failed: usize,
    /// Attempts that failed and were retried.
    retried: usize,
    /// The jobs with an attempt on a worker now, by item index: at most the stage's
    /// parallelism, however many jobs the stage has.
    running: HashSet<usize>,
    /// When the stage started, from the display's origin.
    started: Option<Duration>,
    /// How long the stage took, once final.
    took: Option<Duration>,
}

impl Board {
    fn new(stages: &[&str]) -> Self {
        Self {
            origin: Instant::now(),
            stages: stages
                .iter()
                .map(|id| ((*id).to_owned(), Mutex::default()))
                .collect(),
            index: stages
                .iter()
                .enumerate()
                .map(|(at, id)| ((*id).to_owned(), at))
                .collect(),
            width: stages
                .iter()
                .map(|id| id.chars().count())
                .max()
                .unwrap_or(0),
        }
    }

    fn tally(&self, stage: &str) -> Option<MutexGuard<'_, Tally>> {
        let at = *self.index.get(stage)?;
        Some(
            self.stages[at]
                .1
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Counts one event.
    fn record(&self, event: &Event) {
        let Some(stage) = &event.stage else {
            return;
        };
        let index = event.index.unwrap_or(0);

        match event.kind {
            EventKind::StageStarted => {
                let started = self.origin.elapsed();
                if let Some(mut tally) = self.tally(stage) {
                    tally.phase = Phase::Running;
                    tally.jobs = event.jobs;
                    tally.started = Some(started);
                }
            }
            EventKind::JobStarted => {
                if let Some(mut tally) = self.tally(stage) {
                    tally.running.insert(index);
                }
            }
            EventKind::JobRetrying => {
                if let Some(mut tally) = self.tally(stage) {
                    tally.running.remove(&index);
                    tally.retried += 1;
                }
            }
            EventKind::JobFinished => {
                if let Some(mut tally) = self.tally(stage) {
                    tally.running.remove(&index);
                    tally.finished += 1;
                    if matches!(event.status, Some("failed" | "timed_out")) {
                        tally.failed += 1;
                    }
                }
            }
            EventKind::StageFinished => {
                if let Some(mut tally) = self.tally(stage) {
                    tally.phase = Phase::Done(event.status.unwrap_or("finished"));
                    tally.running.clear();
                    tally.took = event
                        .duration_ms
                        .map(|millis| Duration::from_secs_f64(millis.max(0.0) / 1000.0));
                }
            }
            EventKind::RunStarted | EventKind::RunFinished | EventKind::Log => {}
        }
    }

    /// Every stage's line, `now` after the origin, with the columns aligned.
    fn render(&self, now: Duration) -> String {
        let rows: Vec<Row> = self
            .stages
            .iter()
            .map(|(_, tally)| row(&tally.lock().unwrap_or_else(PoisonError::into_inner), now))
            .collect();
        let jobs_width = rows
            .iter()
            .filter_map(|row| row.started.as_ref())
            .map(|started| started.jobs.chars().count())
            .max()
            .unwrap_or(0);

        let mut out = String::new();
        for (at, ((id, _), row)) in self.stages.iter().zip(&rows).enumerate() {
            if at > 0 {
                out.push('\n');
            }
            let (mark, state, width) = (row.mark, row.state, self.width);
            let Some(started) = &row.started else {
                let _ = write!(out, "{mark} {id:width$}  {state}");
                continue;
            };
            let _ = write!(
                out,
                "{mark} {id:width$}  {state:9}  {}  {:jobs_width$}  {:>7}{}",
                started.bar, started.jobs, started.took, started.extras
            );
        }
        out
    }
}

/// One stage's line in pieces, for the board to align.
struct Row {
    mark: char,
    state: &'static str,
    /// What follows once the stage has started.
    started: Option<Started>,
}

/// The columns of a stage that has started.
struct Started {
    bar: String,
    /// Jobs done of the total.
    jobs: String,
    /// Time since the stage started, or the time it took.
    took: String,
    /// The jobs running, failed and retried, those there are.
    extras: String,
}

/// A stage's line: mark and state, then once it has started a bar, the jobs done of the
/// total, the time, and the jobs running, failed and retried when there are any.
fn row(tally: &Tally, now: Duration) -> Row {
    let (mark, state) = match tally.phase {
        Phase::Waiting => ('·', "waiting"),
        Phase::Running => {
            let frame = (now.as_millis() / TICK.as_millis()) as usize % SPINNER.len();
            (SPINNER[frame], "running")
        }
        Phase::Done("succeeded") => ('✓', "succeeded"),
        Phase::Done("failed") => ('✗', "failed"),
        Phase::Done(status) => ('-', status),
    };
    let Some(started) = tally.started.filter(|_| tally.phase != Phase::Waiting) else {
        return Row {
            mark,
            state,
            started: None,
        };
    };

    let jobs = match tally.jobs {
        Some(1) => format!("{}/1 job", tally.finished),
        Some(jobs) => format!("{}/{jobs} jobs", tally.finished),
        None => format!("{} done", tally.finished),
    };
    let took = tally.took.unwrap_or_else(|| now.saturating_sub(started));
    let mut extras = String::new();
    let counts = [
        (tally.running.len(), "running"),
        (tally.failed, "failed"),
        (tally.retried, "retried"),
    ];
    for (count, what) in counts {
        if count > 0 {
            let _ = write!(extras, "  {count} {what}");
        }
    }

    Row {
        mark,
        state,
        started: Some(Started {
            bar: bar(tally.finished, tally.jobs),
            jobs,
            took: summary::duration(took),
            extras,
        }),
    }
}

/// A bar of [`BAR`] characters filled in proportion to `done` of `total`; blank while the
/// total is unknown.
fn bar(done: usize, total: Option<usize>) -> String {
    let filled = match total {
        Some(0) => BAR,
        Some(total) => (done.min(total) * BAR) / total,
        None => return " ".repeat(BAR),
    };
    format!("{}{}", "█".repeat(filled), "░".repeat(BAR - filled))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, stage: &str, index: Option<usize>) -> Event {
        let run: Arc<str> = Arc::from("r1");
        let mut event = Event::new(kind, &run);
        event.stage = Some(Arc::from(stage));
        event.index = index;
        event
    }

    fn finished(stage: &str, index: usize, status: &'static str) -> Event {
        let mut event = event(EventKind::JobFinished, stage, Some(index));
        event.status = Some(status);
        event
    }

    /// The board after `count` (a fan-out of 8) has had 3 jobs finish, one of them failed, 2
    /// running, one retried; `list` has succeeded and `total` waits.
    fn board_mid_run() -> Board {
        let board = Board::new(&["list", "count", "total"]);
        let mut started = event(EventKind::StageStarted, "count", None);
        started.jobs = Some(8);
        let mut list_done = event(EventKind::StageFinished, "list", None);
        list_done.status = Some("succeeded");
        list_done.duration_ms = Some(4.2);

        let mut list_started = event(EventKind::StageStarted, "list", None);
        list_started.jobs = Some(1);
        board.record(&list_started);
        board.record(&event(EventKind::JobStarted, "list", None));
        board.record(&finished("list", 0, "succeeded"));
        board.record(&list_done);
        board.record(&started);
        for index in 0..5 {
            board.record(&event(EventKind::JobStarted, "count", Some(index)));
        }
        board.record(&event(EventKind::JobRetrying, "count", Some(4)));
        board.record(&finished("count", 0, "succeeded"));
        board.record(&finished("count", 1, "failed"));
        board.record(&finished("count", 2, "succeeded"));
        board
    }

    #[test]
    fn the_board_counts_jobs_done_running_failed_and_retried() {
        let board = board_mid_run();

        let count = board.tally("count").unwrap();

        assert_eq!(count.phase, Phase::Running);
        assert_eq!(count.jobs, Some(8));
        assert_eq!(count.finished, 3);
        assert_eq!(count.failed, 1);
        assert_eq!(count.retried, 1);
        assert_eq!(count.running, HashSet::from([3]));
    }

    #[test]
    fn each_stage_gets_a_line_with_its_state_and_jobs() {
        let board = board_mid_run();
        let started = board.tally("count").unwrap().started.unwrap();

        let text = board.render(started + Duration::from_millis(1500));

        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[0],
            "✓ list   succeeded  ████████████████████  1/1 job     4.2ms"
        );
        assert!(
            lines[1].ends_with(
                "running    ███████░░░░░░░░░░░░░  3/8 jobs    1.50s  1 running  1 failed  1 retried"
            ),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], "· total  waiting");
    }

    #[test]
    fn a_job_cancelled_before_it_started_does_not_change_the_running_count() {
        let board = Board::new(&["wide"]);
        board.record(&event(EventKind::JobStarted, "wide", Some(0)));

        board.record(&finished("wide", 7, "cancelled"));

        let wide = board.tally("wide").unwrap();
        assert_eq!(wide.running.len(), 1);
        assert_eq!(wide.finished, 1);
        assert_eq!(wide.failed, 0);
    }

    #[test]
    fn events_of_unknown_stages_and_runs_are_ignored() {
        let board = Board::new(&["only"]);

        board.record(&event(EventKind::JobStarted, "other", Some(0)));
        let run: Arc<str> = Arc::from("r1");
        board.record(&Event::new(EventKind::RunStarted, &run));

        assert!(board.tally("only").unwrap().running.is_empty());
    }

    #[test]
    fn the_bar_fills_in_proportion_and_stays_blank_without_a_total() {
        assert_eq!(bar(0, Some(4)), "░".repeat(BAR));
        assert_eq!(
            bar(2, Some(4)),
            format!("{}{}", "█".repeat(10), "░".repeat(10))
        );
        assert_eq!(bar(0, Some(0)), "█".repeat(BAR));
        assert_eq!(bar(3, None), " ".repeat(BAR));
    }
}
