//! The scheduler's invariants over random graphs, run through the library: stages of random
//! `needs`, fan-out widths, jobs that fail or sleep, `on_error` policies, `always()`
//! conditions and run timeouts. Whatever the graph, the run ends, a stage starts only once
//! its dependencies are final, every job that started finishes exactly once, no job of a
//! cancelled stage starts, and `always()` stages run.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestCaseError};
use serde_json::Map;
use weft_host::{Catalog, SearchPath};
use weft_plan::Plan;
use weft_runtime::{
    Engine, Event, EventKind, EventSink, PoolConfig, Prepared, RunControl, RunRequest, RunStatus,
};

use crate::plugins;

/// Where proptest keeps the seeds of failed cases, to run them first next time.
const REGRESSIONS: &str = "tests/scenarios/proptest-regressions/invariants.txt";

/// How long one random run may take before the case fails as hung.
const RUN_GUARD: Duration = Duration::from_secs(30);

/// The job of a random stage.
#[derive(Clone, Copy, Debug)]
enum JobKind {
    /// `std.fail`: every attempt fails.
    Fail,
    /// `std.sleep` for this many milliseconds.
    Sleep(u8),
}

/// One random stage; its id is `s` and its position.
#[derive(Clone, Debug)]
struct StageSpec {
    /// Whether it needs each earlier stage (only the first `position` entries count).
    needs: Vec<bool>,
    /// `for_each` over this many items, or a single job.
    fan_out: Option<u8>,
    job: JobKind,
    on_error: Option<&'static str>,
    always: bool,
}

/// One random workflow.
#[derive(Clone, Debug)]
struct GraphSpec {
    stages: Vec<StageSpec>,
    on_error: Option<&'static str>,
    timeout_ms: Option<u8>,
}

impl GraphSpec {
    /// The stages stage `position` needs, by position.
    fn needs(&self, position: usize) -> Vec<usize> {
        (0..position)
            .filter(|&earlier| self.stages[position].needs[earlier])
            .collect()
    }

    /// Every stage stage `position` depends on, directly or not.
    fn ancestors(&self, position: usize) -> BTreeSet<usize> {
        let mut found = BTreeSet::new();
        let mut todo = self.needs(position);
        while let Some(next) = todo.pop() {
            if found.insert(next) {
                todo.extend(self.needs(next));
            }
        }
        found
    }

    /// How many jobs stage `position` runs.
    fn jobs(&self, position: usize) -> usize {
        self.stages[position].fan_out.map_or(1, usize::from)
    }

    fn yaml(&self) -> String {
        let mut text = String::from("version: 1\n");
        if let Some(policy) = self.on_error {
            text.push_str(&format!("on_error: {policy}\n"));
        }
        if let Some(timeout) = self.timeout_ms {
            text.push_str(&format!("timeout: {timeout}ms\n"));
        }
        text.push_str("stages:\n");

        for (position, stage) in self.stages.iter().enumerate() {
            text.push_str(&format!("  s{position}:\n"));
            let needs: Vec<String> = self
                .needs(position)
                .iter()
                .map(|need| format!("s{need}"))
                .collect();
            if !needs.is_empty() {
                text.push_str(&format!("    needs: [{}]\n", needs.join(", ")));
            }
            if let Some(items) = stage.fan_out {
                let items: Vec<String> = (0..items).map(|item| item.to_string()).collect();
                text.push_str(&format!("    for_each: [{}]\n", items.join(", ")));
            }
            if let Some(policy) = stage.on_error {
                text.push_str(&format!("    on_error: {policy}\n"));
            }
            if stage.always {
                text.push_str("    if: ${{ always() }}\n");
            }
            match stage.job {
                JobKind::Fail => text.push_str(&format!(
                    "    job: std.fail\n    with:\n      message: s{position} failed\n"
                )),
                JobKind::Sleep(millis) => text.push_str(&format!(
                    "    job: std.sleep\n    with:\n      duration: {millis}ms\n"
                )),
            }
        }
        text
    }
}

fn policy() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        Just(None),
        Just(Some("fail_fast")),
        Just(Some("finish")),
        Just(Some("continue")),
    ]
}

fn stage() -> impl Strategy<Value = StageSpec> {
    (
        proptest::collection::vec(proptest::bool::weighted(0.4), 8),
        proptest::option::of(0_u8..4),
        prop_oneof![
            1 => Just(JobKind::Fail),
            3 => (1_u8..=5).prop_map(JobKind::Sleep),
        ],
        policy(),
        proptest::bool::weighted(0.25),
    )
        .prop_map(|(needs, fan_out, job, on_error, always)| StageSpec {
            needs,
            fan_out,
            job,
            on_error,
            always,
        })
}

fn graph() -> impl Strategy<Value = GraphSpec> {
    (
        proptest::collection::vec(stage(), 3..8),
        policy(),
        proptest::option::weighted(0.3, 5_u8..40),
    )
        .prop_map(|(stages, on_error, timeout_ms)| GraphSpec {
            stages,
            on_error,
            timeout_ms,
        })
}

/// Keeps every event, in the order they were emitted.
#[derive(Default)]
struct Collect(Mutex<Vec<Event>>);

impl EventSink for Collect {
    fn emit(&self, event: Event) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}

/// One engine (one pool) and the shipped plugins, shared by every case, as one process
/// shares them between its runs.
fn engine() -> &'static (Engine, Catalog) {
    static SHARED: OnceLock<(Engine, Catalog)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let catalog = Catalog::discover(&SearchPath {
            folders: vec![plugins::shipped().to_owned()],
            ..SearchPath::default()
        });
        let engine = Engine::new(PoolConfig {
            workers: 2,
            wait_workers: 64,
        });
        (engine, catalog)
    })
}

/// Runs a random workflow and returns its events and how it ended.
fn run(spec: &GraphSpec) -> Result<(Vec<Event>, RunStatus), TestCaseError> {
    let yaml = spec.yaml();
    let document = weft_spec::load_str(yaml.clone(), "random.yaml", None)
        .map_err(|errors| TestCaseError::fail(format!("{yaml}\ndoes not load: {errors:?}")))?;
    let checked = weft_spec::check(&document);
    prop_assert!(
        document.diagnostics.is_empty() && checked.diagnostics.is_empty(),
        "{yaml}\nis invalid: {:?} {:?}",
        document.diagnostics,
        checked.diagnostics
    );
    let plan = Plan::build(weft_runtime::stage_nodes(&document.workflow, &checked))
        .map_err(|cycles| TestCaseError::fail(format!("{yaml}\nhas cycles: {cycles:?}")))?;

    let (engine, catalog) = engine();
    let prepared = Prepared::new(document.workflow, checked, plan, catalog)
        .map_err(|error| TestCaseError::fail(format!("{yaml}\ncannot be prepared: {error}")))?;
    let sink = Arc::new(Collect::default());
    let request = RunRequest {
        run_id: "invariants".to_owned(),
        inputs: Map::new(),
        control: RunControl::new(),
        events: Some(sink.clone()),
        grace: None,
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|error| TestCaseError::fail(format!("no runtime: {error}")))?;
    let report = runtime
        .block_on(async { tokio::time::timeout(RUN_GUARD, engine.run(&prepared, request)).await })
        .map_err(|_| TestCaseError::fail(format!("{yaml}\ndid not end within {RUN_GUARD:?}")))?;

    let events = std::mem::take(&mut *sink.0.lock().unwrap_or_else(PoisonError::into_inner));
    Ok((events, report.status))
}

/// Where each stage's events are, found once.
struct Timeline<'a> {
    events: &'a [Event],
    started: HashMap<&'a str, Vec<usize>>,
    finished: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Timeline<'a> {
    fn new(events: &'a [Event]) -> Self {
        let mut started: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut finished: HashMap<&str, Vec<usize>> = HashMap::new();
        for (at, event) in events.iter().enumerate() {
            let Some(stage) = event.stage.as_deref() else {
                continue;
            };
            match event.kind {
                EventKind::StageStarted => started.entry(stage).or_default().push(at),
                EventKind::StageFinished => finished.entry(stage).or_default().push(at),
                _ => {}
            }
        }
        Self {
            events,
            started,
            finished,
        }
    }

    fn started(&self, stage: &str) -> &[usize] {
        self.started.get(stage).map_or(&[], Vec::as_slice)
    }

    fn finished(&self, stage: &str) -> &[usize] {
        self.finished.get(stage).map_or(&[], Vec::as_slice)
    }

    fn status(&self, stage: &str) -> Option<&'static str> {
        self.finished(stage)
            .first()
            .and_then(|&at| self.events[at].status)
    }
}

fn is_job_event(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::JobStarted | EventKind::JobFinished | EventKind::JobRetrying
    )
}

/// Checks the stages: each finishes once, starts at most once and only after its
/// dependencies are final, runs its jobs in between, and runs when its `if` says so.
fn check_stages(spec: &GraphSpec, timeline: &Timeline<'_>) -> Result<(), TestCaseError> {
    for position in 0..spec.stages.len() {
        let id = format!("s{position}");
        let stage = &spec.stages[position];
        let finished = timeline.finished(&id);
        let started = timeline.started(&id);
        prop_assert_eq!(finished.len(), 1, "`{}` finishes exactly once", id);
        prop_assert!(started.len() <= 1, "`{}` starts at most once", id);
        let end = finished[0];
        let start = started.first().copied();
        let status = timeline.status(&id).unwrap_or_default();

        let settled = start.unwrap_or(end);
        for need in spec.needs(position) {
            let need_end = timeline.finished(&format!("s{need}")).first().copied();
            prop_assert!(
                need_end.is_some_and(|need_end| need_end < settled),
                "`{}` started or settled before its dependency `s{}` was final",
                id,
                need
            );
        }

        for (at, event) in timeline.events.iter().enumerate() {
            if is_job_event(event.kind) && event.stage.as_deref() == Some(id.as_str()) {
                prop_assert!(
                    start.is_some_and(|start| start < at) && at < end,
                    "a job event of `{}` lies outside the stage's start and end: {:?}",
                    id,
                    event
                );
            }
        }

        if stage.always {
            prop_assert!(start.is_some(), "`{}` has `always()` but did not run", id);
        } else if start.is_some() {
            for ancestor in spec.ancestors(position) {
                prop_assert_eq!(
                    timeline.status(&format!("s{ancestor}")),
                    Some("succeeded"),
                    "`{}` ran though its ancestor `s{}` did not succeed",
                    id,
                    ancestor
                );
            }
        } else {
            prop_assert!(
                status == "skipped" || status == "cancelled",
                "`{}` did not run, yet it is {}",
                id,
                status
            );
        }

        check_stage_status(spec, timeline, position, start.is_some(), status)?;
    }
    Ok(())
}

/// Checks a stage's final status against its jobs.
fn check_stage_status(
    spec: &GraphSpec,
    timeline: &Timeline<'_>,
    position: usize,
    started: bool,
    status: &str,
) -> Result<(), TestCaseError> {
    let id = format!("s{position}");
    let jobs = spec.jobs(position);
    let finished: Vec<&Event> = timeline
        .events
        .iter()
        .filter(|event| {
            event.kind == EventKind::JobFinished && event.stage.as_deref() == Some(id.as_str())
        })
        .collect();

    if status == "succeeded" {
        prop_assert_eq!(
            finished.len(),
            jobs,
            "`{}` succeeded: all its jobs ended",
            id
        );
        prop_assert!(
            finished
                .iter()
                .all(|event| event.status == Some("succeeded")),
            "`{}` succeeded with a job that did not",
            id
        );
    }
    match spec.stages[position].job {
        JobKind::Fail if started && jobs > 0 => prop_assert!(
            status == "failed" || status == "cancelled",
            "`{}` runs `std.fail`, yet it is {}",
            id,
            status
        ),
        JobKind::Sleep(_) => prop_assert!(status != "failed", "`{}` only sleeps", id),
        JobKind::Fail => {}
    }
    Ok(())
}

/// A job: its stage, and its index in a fan-out.
type JobKey<'a> = (&'a str, Option<usize>);

/// Checks the jobs: every job that started finishes exactly once, after its last attempt,
/// attempts count from 1, and no job of a stage starts once a job of it was cancelled.
fn check_jobs(events: &[Event]) -> Result<(), TestCaseError> {
    let mut attempts: HashMap<JobKey<'_>, Vec<u32>> = HashMap::new();
    let mut ends: HashMap<JobKey<'_>, Vec<(usize, Option<u32>)>> = HashMap::new();
    let mut cancelled: HashMap<&str, usize> = HashMap::new();

    for (at, event) in events.iter().enumerate() {
        let Some(stage) = event.stage.as_deref() else {
            continue;
        };
        let job = (stage, event.index);
        match event.kind {
            EventKind::JobStarted => {
                prop_assert!(
                    !cancelled.contains_key(stage),
                    "a job of `{}` started after a job of it was cancelled: {:?}",
                    stage,
                    event
                );
                prop_assert!(
                    !ends.contains_key(&job),
                    "a job started again after it finished: {:?}",
                    event
                );
                attempts
                    .entry(job)
                    .or_default()
                    .push(event.attempt.unwrap_or(0));
            }
            EventKind::JobFinished => {
                ends.entry(job).or_default().push((at, event.attempt));
                if event.status == Some("cancelled") {
                    cancelled.entry(stage).or_insert(at);
                }
            }
            _ => {}
        }
    }

    for (job, started) in &attempts {
        let expected: Vec<u32> = (1..=started.len() as u32).collect();
        prop_assert_eq!(started, &expected, "attempts of {:?} count from 1", job);
        let finished = ends.get(job).map_or(&[][..], Vec::as_slice);
        prop_assert_eq!(
            finished.len(),
            1,
            "{:?} started and should finish exactly once",
            job
        );
        prop_assert_eq!(
            finished[0].1,
            started.last().copied(),
            "{:?} finishes with its last attempt",
            job
        );
    }
    for (job, finished) in &ends {
        prop_assert_eq!(finished.len(), 1, "{:?} finishes exactly once", job);
    }
    Ok(())
}

/// Checks the run as a whole: it starts and finishes once, and its status follows its stages.
fn check_run(
    spec: &GraphSpec,
    timeline: &Timeline<'_>,
    status: RunStatus,
) -> Result<(), TestCaseError> {
    let events = timeline.events;
    let kinds = |kind: EventKind| events.iter().filter(|event| event.kind == kind).count();
    prop_assert_eq!(kinds(EventKind::RunStarted), 1);
    prop_assert_eq!(kinds(EventKind::RunFinished), 1);
    prop_assert_eq!(
        events.first().map(|event| event.kind),
        Some(EventKind::RunStarted)
    );
    prop_assert_eq!(
        events.last().map(|event| event.kind),
        Some(EventKind::RunFinished)
    );

    let finished = events.last().and_then(|event| event.status);
    let expected = match status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    };
    prop_assert_eq!(finished, Some(expected));

    let statuses: Vec<&str> = (0..spec.stages.len())
        .map(|position| timeline.status(&format!("s{position}")).unwrap_or_default())
        .collect();
    if statuses.contains(&"failed") {
        prop_assert_eq!(status, RunStatus::Failed, "a stage failed: {:?}", statuses);
    }
    if status == RunStatus::Succeeded {
        prop_assert!(
            statuses.iter().all(|status| *status == "succeeded"),
            "the run succeeded with stages {:?}",
            statuses
        );
    }
    if spec.timeout_ms.is_none() && !statuses.contains(&"failed") {
        prop_assert_eq!(
            status,
            RunStatus::Succeeded,
            "nothing failed: {:?}",
            statuses
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_graphs_keep_the_scheduler_invariants(spec in graph()) {
        let (events, status) = run(&spec)?;
        let timeline = Timeline::new(&events);

        check_run(&spec, &timeline, status)?;
        check_stages(&spec, &timeline)?;
        check_jobs(&events)?;
    }
}
