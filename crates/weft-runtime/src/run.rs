//! The scheduler: starts each stage when its dependencies are final and its `if` holds,
//! applies `on_error` when a stage fails, and cancels the run through one tree of tokens.
//!
//! # Cancellation
//!
//! [`RunControl`] holds two tokens: `hard`, which stops everything, and `soft`, its child,
//! which is the run's own token. Fail-fast, the run's timeout and a first Ctrl-C cancel
//! `soft`: every running stage's token (a child of `soft`) fires, and so does every job's
//! flag. Stages whose `if` holds after that (`always()`, `cancelled()`, `failure()`) start
//! under a child of `hard`, which only a hard stop cancels.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde_json::{Map, Value};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinSet, LocalSet};
use tokio_util::sync::CancellationToken;
use weft_host::{Catalog, Plugin};
use weft_plan::{Plan, StageNode};
use weft_spec::{Checked, OnError, Workflow};

use crate::eval::{self, Scope};
use crate::events::{Event, EventKind, EventSink};
use crate::pool::{Pool, PoolConfig};
use crate::stage::{self, StageRun};
use crate::state::{StageRecord, StageStatus, StatusFlags};

/// A workflow ready to run: checked, planned, and with each stage's job found in a plugin.
pub struct Prepared {
    pub(crate) workflow: Arc<Workflow>,
    pub(crate) plan: Arc<Plan>,
    pub(crate) checked: Arc<Checked>,
    pub(crate) jobs: HashMap<String, (Arc<Plugin>, usize)>,
    pub(crate) name: String,
}

impl Prepared {
    /// Binds each stage of a valid workflow to its job.
    ///
    /// # Errors
    ///
    /// When a stage's job is not in `catalog`, which validation reports first.
    pub fn new(
        workflow: Workflow,
        checked: Checked,
        plan: Plan,
        catalog: &Catalog,
    ) -> Result<Self, String> {
        let mut jobs = HashMap::new();
        for (id, stage) in &workflow.stages {
            let plugin = catalog
                .plugins
                .get(&stage.job.plugin)
                .ok_or_else(|| format!("stage `{id}`: unknown plugin `{}`", stage.job.plugin))?;
            let index = plugin
                .jobs
                .get_index_of(&stage.job.job)
                .ok_or_else(|| format!("stage `{id}`: unknown job `{}`", stage.job))?;
            jobs.insert(id.clone(), (plugin.clone(), index));
        }
        let name = workflow
            .name
            .clone()
            .unwrap_or_else(|| "workflow".to_owned());
        Ok(Self {
            workflow: Arc::new(workflow),
            plan: Arc::new(plan),
            checked: Arc::new(checked),
            jobs,
            name,
        })
    }
}

/// The stages of a checked workflow as the planner sees them.
///
/// A stage's reference to itself is left out: the checks report it as a self-dependency,
/// and it is not reported again as a cycle.
pub fn stage_nodes(workflow: &Workflow, checked: &Checked) -> Vec<StageNode> {
    workflow
        .stages
        .iter()
        .map(|(id, stage)| StageNode {
            id: id.clone(),
            job: stage.job.to_string(),
            fan_out: stage.is_fan_out(),
            reads: checked
                .reads
                .get(id)
                .into_iter()
                .flatten()
                .filter(|read| *read != id)
                .cloned()
                .collect(),
            needs: stage
                .needs
                .iter()
                .filter(|need| need != id)
                .map(str::to_owned)
                .collect(),
        })
        .collect()
}

/// The stages whose tasks run.
#[derive(Default)]
struct Running {
    tasks: JoinSet<(String, StageRecord)>,
    /// Which stage each task runs, to settle a stage whose task panicked.
    ids: HashMap<tokio::task::Id, String>,
}

impl Running {
    fn spawn(&mut self, id: String, stage: impl Future<Output = StageRecord> + 'static) {
        let key = id.clone();
        let task = self.tasks.spawn_local(async move { (key, stage.await) });
        self.ids.insert(task.id(), id);
    }

    fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// The next stage to end, with its record, or what ended its task without one (a panic,
    /// the engine's own bug). `None` when no stage runs.
    async fn next(&mut self) -> Option<(String, Result<StageRecord, tokio::task::JoinError>)> {
        loop {
            match self.tasks.join_next_with_id().await? {
                Ok((task, (id, record))) => {
                    self.ids.remove(&task);
                    return Some((id, Ok(record)));
                }
                Err(error) => {
                    if let Some(id) = self.ids.remove(&error.id()) {
                        return Some((id, Err(error)));
                    }
                }
            }
        }
    }
}

/// Why a run was cancelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// A stage failed under `on_error: fail_fast`.
    FailFast {
        /// The stage.
        stage: String,
    },
    /// The run's `timeout` passed.
    Timeout,
    /// SIGINT (Ctrl-C).
    Interrupted,
    /// SIGTERM.
    Terminated,
    /// The embedding program cancelled the run.
    Requested,
}

/// Cancels a run from outside: a signal handler, a server, a test.
#[derive(Clone, Debug)]
pub struct RunControl {
    hard: CancellationToken,
    soft: CancellationToken,
    reason: Arc<Mutex<Option<CancelReason>>>,
}

impl Default for RunControl {
    fn default() -> Self {
        Self::new()
    }
}

impl RunControl {
    /// A control that has not been used.
    pub fn new() -> Self {
        let hard = CancellationToken::new();
        let soft = hard.child_token();
        Self {
            hard,
            soft,
            reason: Arc::default(),
        }
    }

    /// Cancels the run: running jobs are told to stop, stages not started do not start,
    /// and stages whose `if` holds after cancellation still run. The first reason given is
    /// kept.
    pub fn cancel(&self, reason: CancelReason) {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(reason);
        self.soft.cancel();
    }

    /// Stops everything at once, the stages that run after a cancellation included.
    pub fn stop_now(&self) {
        self.hard.cancel();
    }

    /// Whether the run was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.soft.is_cancelled()
    }

    /// Why the run was cancelled, if it was.
    pub fn reason(&self) -> Option<CancelReason> {
        self.reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What to run with.
pub struct RunRequest {
    /// The run's id, in events and `run.id`.
    pub run_id: String,
    /// The resolved inputs.
    pub inputs: Map<String, Value>,
    /// Cancellation from outside.
    pub control: RunControl,
    /// Where events go.
    pub events: Option<Arc<dyn EventSink>>,
    /// The grace period, overriding the workflow's `grace`.
    pub grace: Option<Duration>,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// Every stage succeeded or was skipped by its `if`.
    Succeeded,
    /// A stage failed, or the run was cancelled by fail-fast or its timeout.
    Failed,
    /// The run was interrupted from outside (a signal, the embedding program).
    Cancelled,
}

/// The end of a run.
#[derive(Debug)]
pub struct RunReport {
    /// How it ended.
    pub status: RunStatus,
    /// Why it was cancelled, if it was.
    pub reason: Option<CancelReason>,
    /// Every stage, in the plan's order.
    pub stages: IndexMap<String, Arc<StageRecord>>,
    /// The workflow's outputs; `null` for one that could not be evaluated.
    pub outputs: Map<String, Value>,
    /// Outputs that could not be evaluated, and why.
    pub warnings: Vec<String>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// The engine: one worker pool, shared by every run it executes.
pub struct Engine {
    pool: Pool,
}

impl Engine {
    /// Starts the pool.
    pub fn new(config: PoolConfig) -> Self {
        Self {
            pool: Pool::new(config),
        }
    }

    /// The engine's pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs a prepared workflow to its end. Must be called within a tokio runtime with time
    /// enabled; the run's tasks run on the calling thread.
    pub async fn run(&self, prepared: &Prepared, request: RunRequest) -> RunReport {
        let local = LocalSet::new();
        local.run_until(self.schedule(prepared, request)).await
    }

    async fn schedule(&self, prepared: &Prepared, request: RunRequest) -> RunReport {
        let started = Instant::now();
        let run_id: Arc<str> = Arc::from(request.run_id.as_str());
        let workflow = &prepared.workflow;
        let control = request.control.clone();
        let halt = CancellationToken::new();
        let inputs = Value::Object(request.inputs.clone());
        let (failed_early, mut failures) = mpsc::unbounded_channel::<Arc<str>>();
        let run_permits = workflow
            .max_parallel
            .map(|limit| Arc::new(Semaphore::new(limit.0 as usize)));
        let grace = request.grace.unwrap_or_else(|| workflow.grace().get());

        emit(&request.events, || {
            Event::new(EventKind::RunStarted, &run_id)
        });
        tracing::info!(run = %run_id, workflow = %prepared.name, "run started");

        let mut records = Records::new(prepared);
        let mut running = Running::default();
        let mut policy_applied: HashSet<String> = HashSet::new();
        let timeout = workflow
            .timeout
            .map(|timeout| tokio::time::sleep(timeout.get()));
        tokio::pin!(let timeout = async move {
            match timeout {
                Some(sleep) => sleep.await,
                None => std::future::pending().await,
            }
        };);
        let mut timed_out = false;

        loop {
            self.start_ready(
                prepared,
                &request,
                &run_id,
                &halt,
                &failed_early,
                &run_permits,
                grace,
                &inputs,
                &mut records,
                &mut running,
            );
            if running.is_empty() {
                break;
            }

            tokio::select! {
                ended = running.next() => {
                    let Some((id, ended)) = ended else { continue };
                    let record = ended.unwrap_or_else(|error| {
                        tracing::error!(stage = %id, %error, "a stage's task ended without a result");
                        let mut record = StageRecord::pending(workflow.stages[&id].is_fan_out());
                        record.status = StageStatus::Failed;
                        record.error = Some(crate::state::ErrorInfo::fatal(format!(
                            "the engine failed while running the stage: {error}"
                        )));
                        stage::emit_stage_finished(&request.events, &run_id, &Arc::from(id.as_str()), &record);
                        record
                    });
                    let failed = record.status == StageStatus::Failed;
                    records.settle(prepared, &id, record);
                    if failed {
                        self.apply_policy(prepared, &id, &control, &halt, &mut policy_applied);
                    }
                }
                Some(id) = failures.recv() => {
                    self.apply_policy(prepared, &id, &control, &halt, &mut policy_applied);
                }
                () = &mut timeout, if !timed_out => {
                    timed_out = true;
                    tracing::warn!(run = %run_id, "the run's timeout passed: cancelling");
                    control.cancel(CancelReason::Timeout);
                }
            }
        }

        self.finish(prepared, &request, &run_id, records.records, started)
    }

    /// Starts every pending stage whose dependencies are final, or settles it without running.
    #[expect(
        clippy::too_many_arguments,
        reason = "the scheduler's state, passed down one level"
    )]
    fn start_ready(
        &self,
        prepared: &Prepared,
        request: &RunRequest,
        run_id: &Arc<str>,
        halt: &CancellationToken,
        failed_early: &mpsc::UnboundedSender<Arc<str>>,
        run_permits: &Option<Arc<Semaphore>>,
        grace: Duration,
        inputs: &Value,
        records: &mut Records,
        running: &mut Running,
    ) {
        let control = &request.control;
        while let Some(id) = records.ready.pop_front() {
            let cancelled = control.is_cancelled();
            let halted = halt.is_cancelled();
            let dependencies = prepared.plan.dependencies(&id);
            let flags = StatusFlags {
                success: !cancelled
                    && !halted
                    && dependencies
                        .iter()
                        .all(|(dependency, _)| records.lineage[*dependency].succeeded),
                failure: dependencies
                    .iter()
                    .any(|(dependency, _)| records.lineage[*dependency].failed),
                cancelled,
            };
            let stage = &prepared.workflow.stages[&id];
            let reads: Vec<(&str, &Arc<StageRecord>)> = prepared
                .checked
                .reads
                .get(&id)
                .into_iter()
                .flatten()
                .filter_map(|read| {
                    records
                        .records
                        .get(read)
                        .map(|record| (read.as_str(), record))
                })
                .collect();
            let scope = Scope::new(inputs, run_id, &prepared.name, reads, flags);
            let has_status = prepared
                .checked
                .condition_has_status
                .get(&id)
                .copied()
                .unwrap_or(false);

            let holds = eval::condition(stage.condition.as_ref(), has_status, &scope);
            let stage_id: Arc<str> = Arc::from(id.as_str());
            match holds {
                Ok(true) => {}
                Ok(false) => {
                    let status = if cancelled || halted {
                        StageStatus::Cancelled
                    } else {
                        StageStatus::Skipped
                    };
                    let mut record = StageRecord::pending(stage.is_fan_out());
                    record.status = status;
                    stage::emit_stage_finished(&request.events, run_id, &stage_id, &record);
                    records.settle(prepared, &id, record);
                    continue;
                }
                Err(error) => {
                    let mut record = StageRecord::pending(stage.is_fan_out());
                    record.status = StageStatus::Failed;
                    record.error = Some(crate::state::ErrorInfo::fatal(format!(
                        "`if` did not evaluate: {error}"
                    )));
                    stage::emit_stage_finished(&request.events, run_id, &stage_id, &record);
                    records.settle(prepared, &id, record);
                    let _ = failed_early.send(stage_id);
                    continue;
                }
            }

            // After a cancellation, a stage runs under the hard root, out of the run's reach.
            let after_stop = cancelled || halted;
            let token = if after_stop {
                control.hard.child_token()
            } else {
                control.soft.child_token()
            };
            let (plugin, job) = prepared.jobs[&id].clone();
            let run = StageRun {
                id: stage_id,
                stage: stage.clone(),
                defaults: prepared.workflow.defaults.clone(),
                plugin,
                job,
                scope,
                pool: self.pool.clone(),
                token,
                halt: (!after_stop).then(|| halt.clone()),
                run_permits: run_permits.clone(),
                grace,
                run_id: run_id.clone(),
                events: request.events.clone(),
                failed_early: failed_early.clone(),
            };
            let mut record = StageRecord::pending(stage.is_fan_out());
            record.status = StageStatus::Running;
            records.records.insert(id.clone(), Arc::new(record));
            running.spawn(id, stage::run(run));
        }
    }

    fn apply_policy(
        &self,
        prepared: &Prepared,
        id: &str,
        control: &RunControl,
        halt: &CancellationToken,
        applied: &mut HashSet<String>,
    ) {
        if !applied.insert(id.to_owned()) {
            return;
        }
        let policy = prepared.workflow.stages[id]
            .on_error
            .unwrap_or(prepared.workflow.on_error);
        tracing::warn!(stage = %id, policy = ?policy, "stage failed");
        match policy {
            OnError::FailFast => control.cancel(CancelReason::FailFast {
                stage: id.to_owned(),
            }),
            OnError::Finish => halt.cancel(),
            OnError::Continue => {}
        }
    }

    fn finish(
        &self,
        prepared: &Prepared,
        request: &RunRequest,
        run_id: &Arc<str>,
        records: IndexMap<String, Arc<StageRecord>>,
        started: Instant,
    ) -> RunReport {
        let reason = request.control.reason();
        let any_failed = records
            .values()
            .any(|record| record.status == StageStatus::Failed);
        let status = match &reason {
            Some(
                CancelReason::Interrupted | CancelReason::Terminated | CancelReason::Requested,
            ) => RunStatus::Cancelled,
            Some(_) => RunStatus::Failed,
            None if any_failed => RunStatus::Failed,
            None => RunStatus::Succeeded,
        };

        let flags = StatusFlags {
            success: status == RunStatus::Succeeded,
            failure: any_failed,
            cancelled: reason.is_some(),
        };
        let reads: Vec<(&str, &Arc<StageRecord>)> = records
            .iter()
            .map(|(id, record)| (id.as_str(), record))
            .collect();
        let scope = Scope::new(
            &Value::Object(request.inputs.clone()),
            run_id,
            &prepared.name,
            reads,
            flags,
        );
        let (outputs, errors) = eval::outputs(&prepared.workflow.outputs, &scope);
        let warnings: Vec<String> = errors
            .into_iter()
            .map(|(name, error)| format!("output `{name}` is null: {error}"))
            .collect();
        for warning in &warnings {
            tracing::warn!("{warning}");
        }

        let elapsed = started.elapsed();
        emit(&request.events, || {
            let mut event = Event::new(EventKind::RunFinished, run_id);
            event.status = Some(match status {
                RunStatus::Succeeded => "succeeded",
                RunStatus::Failed => "failed",
                RunStatus::Cancelled => "cancelled",
            });
            event.duration_ms = Some(elapsed.as_secs_f64() * 1000.0);
            event
        });
        tracing::info!(run = %run_id, status = ?status, elapsed = ?elapsed, "run finished");

        RunReport {
            status,
            reason,
            stages: records,
            outputs,
            warnings,
            elapsed,
        }
    }
}

/// What the scheduler knows of every stage, and which stages can be decided now.
///
/// A stage is ready when its last dependency becomes final; it is then decided once (run,
/// skipped or cancelled). Whether all of a stage's ancestors succeeded, or one failed, is
/// carried down the graph as stages settle, so deciding a stage costs its direct
/// dependencies only, even in a 10,000-stage chain.
struct Records {
    records: IndexMap<String, Arc<StageRecord>>,
    waiting_on: HashMap<String, usize>,
    ready: VecDeque<String>,
    lineage: HashMap<String, Lineage>,
}

/// What a final stage passes on to the stages after it.
#[derive(Clone, Copy, Debug, Default)]
struct Lineage {
    /// The stage and all its ancestors succeeded.
    succeeded: bool,
    /// The stage or one of its ancestors failed.
    failed: bool,
}

impl Records {
    fn new(prepared: &Prepared) -> Self {
        let mut records = IndexMap::new();
        let mut waiting_on = HashMap::new();
        let mut ready = VecDeque::new();
        for id in prepared.plan.order() {
            let fan_out = prepared.workflow.stages[id].is_fan_out();
            records.insert(id.to_owned(), Arc::new(StageRecord::pending(fan_out)));
            let dependencies = prepared.plan.dependencies(id).len();
            if dependencies == 0 {
                ready.push_back(id.to_owned());
            }
            waiting_on.insert(id.to_owned(), dependencies);
        }
        Self {
            records,
            waiting_on,
            ready,
            lineage: HashMap::new(),
        }
    }

    /// Records a stage's final state, and readies the stages that were waiting for it alone.
    fn settle(&mut self, prepared: &Prepared, id: &str, record: StageRecord) {
        let dependencies = prepared.plan.dependencies(id);
        let lineage = Lineage {
            succeeded: record.status == StageStatus::Succeeded
                && dependencies
                    .iter()
                    .all(|(dependency, _)| self.lineage[*dependency].succeeded),
            failed: record.status == StageStatus::Failed
                || dependencies
                    .iter()
                    .any(|(dependency, _)| self.lineage[*dependency].failed),
        };
        self.lineage.insert(id.to_owned(), lineage);
        self.records.insert(id.to_owned(), Arc::new(record));

        for dependent in prepared.plan.dependents(id) {
            if let Some(waiting) = self.waiting_on.get_mut(dependent) {
                *waiting -= 1;
                if *waiting == 0 {
                    self.ready.push_back(dependent.to_owned());
                }
            }
        }
    }
}

/// Emits an event built by `build`, only when there is a sink.
pub(crate) fn emit(events: &Option<Arc<dyn EventSink>>, build: impl FnOnce() -> Event) {
    if let Some(events) = events {
        events.emit(build());
    }
}
