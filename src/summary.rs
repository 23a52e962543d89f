//! The account of a finished run printed on stderr: a table of the stages, then each failure
//! with its stage, item, attempt and the first lines of its error, then the verdict.
//!
//! The report holds each failed job's error but not the attempt it failed on; [`Attempts`], an
//! event sink, keeps that for the jobs the summary lists. Every time in the summary goes
//! through [`duration`], so that tests can find and redact them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use weft_runtime::{
    CancelReason, ErrorInfo, Event, EventKind, EventSink, JobStatus, RunReport, RunStatus,
    StageRecord,
};

/// The most failed jobs listed per stage; the rest are counted.
const LISTED_PER_STAGE: usize = 10;

/// The most lines of an error message shown; the rest are marked with `…`.
const MESSAGE_LINES: usize = 3;

/// The most characters of one line of an error message shown.
const LINE_CHARS: usize = 200;

/// Records the attempt on which each failed job ended, for the first
/// [`LISTED_PER_STAGE`] item indexes of each stage (the ones the summary lists), so that a
/// fan-out where every job fails costs no more memory than one where a few do.
#[derive(Default)]
pub struct Attempts {
    by_stage: Mutex<HashMap<Arc<str>, BTreeMap<usize, u32>>>,
}

impl Attempts {
    /// The attempt on which job `index` of `stage` ended, if it failed and is among the ones
    /// listed.
    fn of(&self, stage: &str, index: usize) -> Option<u32> {
        let by_stage = self.by_stage.lock().unwrap_or_else(PoisonError::into_inner);
        by_stage.get(stage)?.get(&index).copied()
    }
}

impl EventSink for Attempts {
    fn emit(&self, event: Event) {
        // A cancelled job keeps its error, but is not listed among the failures.
        if event.kind != EventKind::JobFinished
            || event.error.is_none()
            || event.status == Some(JobStatus::Cancelled.as_str())
        {
            return;
        }
        let (Some(stage), Some(attempt)) = (event.stage, event.attempt) else {
            return;
        };
        let index = event.index.unwrap_or(0);

        let mut by_stage = self.by_stage.lock().unwrap_or_else(PoisonError::into_inner);
        let attempts = by_stage.entry(stage).or_default();
        attempts.insert(index, attempt);
        if attempts.len() > LISTED_PER_STAGE {
            attempts.pop_last();
        }
    }
}

/// The summary of a finished run: the stage table, the failures and the verdict, each line
/// ending with a line feed.
pub fn render(report: &RunReport, attempts: &Attempts) -> String {
    let mut out = String::new();
    table(&mut out, report);
    failures(&mut out, report, attempts);
    let _ = writeln!(out, "{} in {}", verdict(report), duration(report.elapsed));
    out
}

/// A time as the summary writes it: `850µs`, `12.3ms`, `4.56s`, `2m05s`, `1h02m`.
pub fn duration(time: Duration) -> String {
    let seconds = time.as_secs();
    if time < Duration::from_millis(1) {
        format!("{}µs", time.as_micros())
    } else if time < Duration::from_secs(1) {
        format!("{:.1}ms", time.as_secs_f64() * 1000.0)
    } else if time < Duration::from_secs(60) {
        format!("{:.2}s", time.as_secs_f64())
    } else if time < Duration::from_secs(3600) {
        format!("{}m{:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60)
    }
}

/// The table's columns: the stage and its status on the left, then numbers on the right.
const COLUMNS: [&str; 8] = [
    "stage",
    "status",
    "ok",
    "failed",
    "cancelled",
    "abandoned",
    "attempts",
    "time",
];

/// One line per stage, under a header: status, jobs by final state, attempts and wall time,
/// each column as wide as its widest cell. A stage that never ran (skipped, or cancelled
/// before it started) shows dashes.
fn table(out: &mut String, report: &RunReport) {
    let mut rows = vec![COLUMNS.map(str::to_owned)];
    for (id, record) in &report.stages {
        let status = record.status.as_str().to_owned();
        if never_ran(record) {
            let dash = || "-".to_owned();
            rows.push([
                id.clone(),
                status,
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
            ]);
            continue;
        }
        let counts = record.counts();
        rows.push([
            id.clone(),
            status,
            counts.succeeded.to_string(),
            counts.failed.to_string(),
            counts.cancelled.to_string(),
            counts.abandoned.to_string(),
            record.attempts.to_string(),
            duration(record.elapsed),
        ]);
    }

    let mut widths = [0; COLUMNS.len()];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in &rows {
        let [stage, status, numbers @ .., time] = row;
        let _ = write!(out, "{stage:0$}  {status:1$}", widths[0], widths[1]);
        for (number, width) in numbers.iter().zip(&widths[2..]) {
            let _ = write!(out, "  {number:>width$}");
        }
        let _ = writeln!(out, "  {time}");
    }
}

/// Whether a stage reached its final state without starting: no job, no attempt, no time.
fn never_ran(record: &StageRecord) -> bool {
    record.jobs.is_empty() && record.attempts == 0 && record.elapsed.is_zero()
}

/// The errors of the jobs of `record` that failed: a cancelled job keeps the error its plugin
/// returned when it stopped, but a cancellation is not a failure of the job.
fn failed_jobs(record: &StageRecord) -> impl Iterator<Item = (&usize, &ErrorInfo)> {
    record
        .errors
        .iter()
        .filter(|(index, _)| record.jobs.get(**index) != Some(&JobStatus::Cancelled))
}

/// The stages that failed before their jobs ran, then the jobs that ended with an error, in
/// stage and item order, at most [`LISTED_PER_STAGE`] jobs a stage.
fn failures(out: &mut String, report: &RunReport, attempts: &Attempts) {
    let any = report
        .stages
        .values()
        .any(|record| record.error.is_some() || failed_jobs(record).next().is_some());
    if !any {
        return;
    }
    out.push_str("\nfailures:\n");

    for (id, record) in &report.stages {
        if let Some(error) = &record.error {
            let _ = write!(out, "  stage `{id}`: ");
            message(out, error);
        }

        for (index, error) in failed_jobs(record).take(LISTED_PER_STAGE) {
            let job = if record.fan_out {
                format!("{id}[{index}]")
            } else {
                id.clone()
            };
            let mut about = Vec::new();
            if let Some(attempt) = attempts.of(id, *index) {
                about.push(format!("attempt {attempt}"));
            }
            match record.jobs.get(*index) {
                Some(JobStatus::Failed) | None => {}
                Some(status) => about.push(status.as_str().replace('_', " ")),
            }
            if about.is_empty() {
                let _ = write!(out, "  {job}: ");
            } else {
                let _ = write!(out, "  {job} ({}): ", about.join(", "));
            }
            message(out, error);
        }

        let more = failed_jobs(record).count().saturating_sub(LISTED_PER_STAGE);
        if more > 0 {
            let jobs = if more == 1 { "job" } else { "jobs" };
            let _ = writeln!(out, "  … and {more} more failed {jobs} of `{id}`");
        }
    }
    out.push('\n');
}

/// The first lines of an error's message, the later ones indented under the first, each cut
/// to [`LINE_CHARS`] characters.
fn message(out: &mut String, error: &ErrorInfo) {
    let mut lines = error.message.lines().map(str::trim_end);
    let first = lines.next().unwrap_or_default();
    let _ = writeln!(out, "{}", cut(first));

    let rest: Vec<&str> = lines.collect();
    for line in rest.iter().take(MESSAGE_LINES - 1) {
        let _ = writeln!(out, "      {}", cut(line));
    }
    if rest.len() > MESSAGE_LINES - 1 {
        out.push_str("      …\n");
    }
}

/// A line cut to [`LINE_CHARS`] characters, with `…` when it was longer.
fn cut(line: &str) -> String {
    match line.char_indices().nth(LINE_CHARS) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    }
}

/// How the run ended, in words.
fn verdict(report: &RunReport) -> String {
    match (&report.status, &report.reason) {
        (RunStatus::Succeeded, _) => "run succeeded".to_owned(),
        (_, Some(CancelReason::FailFast { stage })) => {
            format!("run failed: stage `{stage}` failed, and the run was cancelled (fail-fast)")
        }
        (_, Some(CancelReason::Timeout)) => "run failed: its timeout passed".to_owned(),
        (_, Some(CancelReason::Interrupted)) => "run interrupted".to_owned(),
        (_, Some(CancelReason::Terminated)) => "run terminated".to_owned(),
        _ => "run failed".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use weft_runtime::StageStatus;

    use super::*;

    fn error(message: &str) -> ErrorInfo {
        ErrorInfo {
            message: message.to_owned(),
            retryable: true,
            details: None,
        }
    }

    /// A run of `status` that took 10 ms, with these stages in this order.
    fn report(status: RunStatus, stages: Vec<(&str, StageRecord)>) -> RunReport {
        RunReport {
            status,
            reason: None,
            stages: stages
                .into_iter()
                .map(|(id, record)| (id.to_owned(), Arc::new(record)))
                .collect(),
            outputs: Default::default(),
            warnings: Vec::new(),
            elapsed: Duration::from_millis(10),
        }
    }

    fn stage(status: StageStatus, jobs: Vec<JobStatus>, attempts: u64, millis: u64) -> StageRecord {
        let mut record = StageRecord::pending(jobs.len() != 1);
        record.status = status;
        record.jobs = jobs;
        record.attempts = attempts;
        record.elapsed = Duration::from_millis(millis);
        record
    }

    /// A fan-out with two failed items (one retried, one with a long message) under
    /// `on_error: continue`, a single job that timed out, a stage that failed before its jobs,
    /// and a stage skipped because of them.
    fn failed_run() -> (RunReport, Attempts) {
        use JobStatus::{Failed, Succeeded, TimedOut};

        let mut check = stage(
            StageStatus::Failed,
            vec![Succeeded, Failed, Succeeded, Failed],
            6,
            1234,
        );
        check.errors = BTreeMap::from([
            (1, error("item 1 is odd")),
            (
                3,
                error("item 3 is odd\n  at line 2\n  at line 3\n  at line 4\n"),
            ),
        ]);
        let mut slow = stage(StageStatus::Failed, vec![TimedOut], 2, 1000);
        slow.fan_out = false;
        slow.errors = BTreeMap::from([(0, error("timed out after 500ms"))]);
        let mut list = StageRecord::pending(true);
        list.status = StageStatus::Failed;
        list.error = Some(ErrorInfo::fatal(
            "`for_each` did not evaluate: `stages.numbers.output` is not a list",
        ));
        let mut publish = StageRecord::pending(false);
        publish.status = StageStatus::Skipped;

        let stages = [
            (
                "numbers",
                stage(StageStatus::Succeeded, vec![Succeeded], 1, 3),
            ),
            ("check", check),
            ("slow", slow),
            ("list", list),
            ("publish", publish),
        ]
        .into_iter()
        .map(|(id, record)| (id.to_owned(), Arc::new(record)))
        .collect();
        let report = RunReport {
            status: RunStatus::Failed,
            reason: None,
            stages,
            outputs: Default::default(),
            warnings: Vec::new(),
            elapsed: Duration::from_millis(1502),
        };

        let attempts = Attempts::default();
        let run: Arc<str> = Arc::from("r1");
        for (stage, index, attempt) in [
            ("check", Some(1), 2),
            ("check", Some(3), 2),
            ("slow", None, 2),
        ] {
            let mut event = Event::new(EventKind::JobFinished, &run);
            event.stage = Some(Arc::from(stage));
            event.index = index;
            event.attempt = Some(attempt);
            event.status = Some("failed");
            event.error = Some(error("x"));
            attempts.emit(event);
        }
        (report, attempts)
    }

    #[test]
    fn the_summary_of_a_failed_run_lists_stages_failures_and_the_verdict() {
        let (report, attempts) = failed_run();

        insta::assert_snapshot!(render(&report, &attempts));
    }

    #[test]
    fn the_summary_of_a_fail_fast_run_names_the_stage_that_failed() {
        let (mut report, attempts) = failed_run();
        report.reason = Some(CancelReason::FailFast {
            stage: "check".to_owned(),
        });

        let summary = render(&report, &attempts);

        assert!(
            summary.ends_with(
                "run failed: stage `check` failed, and the run was cancelled (fail-fast) in 1.50s\n"
            ),
            "{summary}"
        );
    }

    #[test]
    fn a_stage_with_many_failures_lists_the_first_ones_and_counts_the_rest() {
        let attempts = Attempts::default();
        let run: Arc<str> = Arc::from("r1");
        let mut record = stage(StageStatus::Failed, vec![JobStatus::Failed; 25], 25, 10);
        for index in (0..25).rev() {
            record.errors.insert(index, error(&format!("bad {index}")));
            let mut event = Event::new(EventKind::JobFinished, &run);
            event.stage = Some(Arc::from("wide"));
            event.index = Some(index);
            event.attempt = Some(1);
            event.error = Some(error("x"));
            attempts.emit(event);
        }
        let report = report(RunStatus::Failed, vec![("wide", record)]);

        let summary = render(&report, &attempts);

        assert!(
            summary.contains("  wide[0] (attempt 1): bad 0\n"),
            "{summary}"
        );
        assert!(
            summary.contains("  wide[9] (attempt 1): bad 9\n"),
            "{summary}"
        );
        assert!(!summary.contains("bad 10"), "{summary}");
        assert!(
            summary.contains("  … and 15 more failed jobs of `wide`\n"),
            "{summary}"
        );
    }

    #[test]
    fn cancelled_jobs_keep_their_errors_out_of_the_failures() {
        use JobStatus::{Cancelled, Failed};

        let mut naps = stage(StageStatus::Cancelled, vec![Cancelled, Cancelled], 2, 10);
        naps.errors = BTreeMap::from([(0, error("cancelled")), (1, error("cancelled"))]);
        let mut boom = stage(StageStatus::Failed, vec![Failed], 1, 1);
        boom.fan_out = false;
        boom.errors = BTreeMap::from([(0, error("now"))]);
        let report = report(RunStatus::Failed, vec![("naps", naps), ("boom", boom)]);

        let summary = render(&report, &Attempts::default());

        assert!(summary.contains("failures:\n  boom: now\n"), "{summary}");
        assert!(!summary.contains("naps["), "{summary}");
    }

    #[test]
    fn failed_jobs_after_many_cancelled_ones_still_show_their_attempt() {
        let attempts = Attempts::default();
        let run: Arc<str> = Arc::from("r1");
        let mut jobs = vec![JobStatus::Cancelled; LISTED_PER_STAGE + 2];
        jobs.push(JobStatus::Failed);
        let failed = jobs.len() - 1;
        let mut record = stage(StageStatus::Failed, jobs.clone(), 14, 10);
        for (index, status) in jobs.iter().enumerate() {
            record.errors.insert(index, error("stopped"));
            let mut event = Event::new(EventKind::JobFinished, &run);
            event.stage = Some(Arc::from("wide"));
            event.index = Some(index);
            event.attempt = Some(if index == failed { 3 } else { 1 });
            event.status = Some(status.as_str());
            event.error = Some(error("stopped"));
            attempts.emit(event);
        }
        let report = report(RunStatus::Failed, vec![("wide", record)]);

        let summary = render(&report, &attempts);

        assert!(
            summary.contains(&format!("  wide[{failed}] (attempt 3): stopped\n")),
            "{summary}"
        );
    }

    #[test]
    fn a_succeeded_run_has_no_failure_section() {
        let report = RunReport {
            status: RunStatus::Succeeded,
            reason: None,
            stages: [(
                "only".to_owned(),
                Arc::new(stage(
                    StageStatus::Succeeded,
                    vec![JobStatus::Succeeded],
                    1,
                    5,
                )),
            )]
            .into_iter()
            .collect(),
            outputs: Default::default(),
            warnings: Vec::new(),
            elapsed: Duration::from_millis(7),
        };

        let summary = render(&report, &Attempts::default());

        assert!(!summary.contains("failures"), "{summary}");
        assert!(summary.ends_with("run succeeded in 7.0ms\n"), "{summary}");
    }

    #[test]
    fn durations_read_in_the_unit_that_fits() {
        let cases = [
            (Duration::from_micros(850), "850µs"),
            (Duration::from_micros(12_340), "12.3ms"),
            (Duration::from_millis(4_560), "4.56s"),
            (Duration::from_secs(125), "2m05s"),
            (Duration::from_secs(3_720), "1h02m"),
        ];

        for (time, expected) in cases {
            assert_eq!(duration(time), expected);
        }
    }

    #[test]
    fn long_lines_of_a_message_are_cut() {
        let long = "x".repeat(LINE_CHARS + 5);

        assert_eq!(cut(&long), format!("{}…", "x".repeat(LINE_CHARS)));
        assert_eq!(cut("short"), "short");
    }
}
