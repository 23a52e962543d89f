//! What the scenarios share: running a fixture with an events file, running `weft` as a child
//! the test controls (to signal it, or to give it longer than the hang guard), and reading the
//! events back.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, Output, drain, join};
use crate::plugins;

/// The folder of the scenario fixtures, relative to the repository root.
const FIXTURES: &str = "tests/fixtures/scenarios";

/// A run of one fixture, to be started.
pub struct Scenario {
    fixture: String,
    misbehave: bool,
    args: Vec<OsString>,
    events: PathBuf,
    write_events: bool,
}

impl Scenario {
    /// The fixture `tests/fixtures/scenarios/NAME.yaml`, run with the shipped plugins and an
    /// events file of its own.
    pub fn new(name: &str) -> Self {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scenarios");
        std::fs::create_dir_all(&folder).expect("the events folder can be made");
        let run = RUNS.fetch_add(1, Ordering::SeqCst);
        let events = folder.join(format!("{name}-{}-{run}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&events);
        Self {
            fixture: format!("{FIXTURES}/{name}.yaml"),
            misbehave: false,
            args: Vec::new(),
            events,
            write_events: true,
        }
    }

    /// Finds the test-only `misbehave` plugin too.
    pub fn with_misbehave(mut self) -> Self {
        self.misbehave = true;
        self
    }

    /// Runs without `--events`.
    pub fn without_events(mut self) -> Self {
        self.write_events = false;
        self
    }

    /// Adds arguments after `run FILE`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(OsString::from));
        self
    }

    /// Where the run writes its events.
    pub fn events_path(&self) -> &Path {
        &self.events
    }

    /// The whole command line after `weft`. Builds the plugins it needs first.
    pub fn command_line(&self) -> Vec<OsString> {
        plugins::shipped();
        let mut line: Vec<OsString> = Vec::new();
        if self.misbehave {
            line.push("--plugin-path".into());
            line.push(plugins::test_only().misbehave.clone().into());
        }
        line.extend(["run".into(), self.fixture.clone().into()]);
        if self.write_events {
            line.extend(["--events".into(), self.events.clone().into_os_string()]);
        }
        line.extend(self.args.iter().cloned());
        line
    }

    /// Runs `weft` to its end, under the common hang guard.
    pub fn run(self) -> Run {
        let output = common::weft(&self.command_line());
        Run::new(output, &self.events)
    }

    /// Runs `weft` to its end, under a guard of `guard` rather than the common one.
    pub fn run_within(self, guard: Duration) -> Run {
        let output = Spawned::start(&self.command_line()).wait(guard);
        Run::new(output, &self.events)
    }
}

/// What a finished run left.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Stdout, parsed as JSON (`null` when it is not JSON).
    pub outputs: Value,
    /// The lines of the events file (empty when there is no file).
    pub events: Events,
    /// Stderr, for messages.
    pub stderr: String,
    /// Stdout as it was.
    pub stdout: String,
}

impl Run {
    fn new(output: Output, events: &Path) -> Self {
        Self {
            code: output.code,
            outputs: serde_json::from_str(&output.stdout).unwrap_or(Value::Null),
            events: Events::read(events),
            stderr: output.stderr,
            stdout: output.stdout,
        }
    }

    /// Asserts the exit code, showing stderr when it differs.
    #[track_caller]
    pub fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code, code,
            "unexpected exit code; stderr:\n{}\nstdout:\n{}",
            self.stderr, self.stdout
        );
    }
}

/// `weft` as a child process the test controls: it can signal it, and wait for it under a
/// guard of its choice.
pub struct Spawned {
    child: Child,
    stdout: thread::JoinHandle<Vec<u8>>,
    stderr: thread::JoinHandle<Vec<u8>>,
}

impl Spawned {
    /// Starts `weft ARGS...` from the repository root, as [`common::weft`] does.
    pub fn start(args: &[OsString]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("RUST_LOG")
            .env_remove("WEFT_PLUGIN_PATH")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start weft: {error}"));
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the child to end. Kills it and fails the test when it has not ended after
    /// `guard`.
    pub fn wait(mut self, guard: Duration) -> Output {
        let started = Instant::now();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() > guard => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("hung: weft did not finish within {guard:?}");
                }
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(error) => panic!("cannot wait for weft: {error}"),
            }
        };
        Output {
            code: status.code().unwrap_or(-1),
            stdout: join(self.stdout),
            stderr: join(self.stderr),
        }
    }

    /// Waits for the child to end, under `guard` as [`Spawned::wait`] does, and reads what
    /// its run left, with the events file of `scenario`.
    pub fn finish(self, scenario: &Scenario, guard: Duration) -> Run {
        Run::new(self.wait(guard), scenario.events_path())
    }

    /// Kills the child, when a test gives up on it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines of an events file, in order, each parsed as JSON.
#[derive(Debug)]
pub struct Events(Vec<Value>);

impl Events {
    /// Reads the file at `path`; no file gives no events. A line that is not JSON (the last
    /// one, while the run is still writing) is left out.
    pub fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        Self(
            text.lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect(),
        )
    }

    /// Every event, in order.
    pub fn all(&self) -> &[Value] {
        &self.0
    }

    /// The events of `kind`, in order.
    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.0
            .iter()
            .filter(|event| event["kind"] == kind)
            .collect()
    }

    /// The events of `kind` about `stage`, in order.
    pub fn of_stage(&self, kind: &str, stage: &str) -> Vec<&Value> {
        self.0
            .iter()
            .filter(|event| event["kind"] == kind && event["stage"] == stage)
            .collect()
    }

    /// Where the first event of `kind` about `stage` is.
    pub fn position(&self, kind: &str, stage: &str) -> Option<usize> {
        self.0
            .iter()
            .position(|event| event["kind"] == kind && event["stage"] == stage)
    }

    /// Whether `stage` started (its `if` held and it ran).
    pub fn stage_started(&self, stage: &str) -> bool {
        self.position("stage_started", stage).is_some()
    }

    /// A stage's final status, from its `stage_finished` event.
    ///
    /// # Panics
    ///
    /// When the stage has no `stage_finished` event.
    #[track_caller]
    pub fn stage_status(&self, stage: &str) -> &str {
        let finished = self.of_stage("stage_finished", stage);
        assert_eq!(
            finished.len(),
            1,
            "stage `{stage}` should finish exactly once: {:#?}",
            self.0
        );
        finished[0]["status"].as_str().unwrap_or_default()
    }

    /// The final status of each job of a stage that has a `job_finished` event, by index
    /// (`None` for a single job).
    pub fn job_statuses(&self, stage: &str) -> Vec<(Option<u64>, String)> {
        let mut statuses: Vec<(Option<u64>, String)> = self
            .of_stage("job_finished", stage)
            .into_iter()
            .map(|event| {
                (
                    event["index"].as_u64(),
                    event["status"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        statuses.sort();
        statuses
    }

    /// The `status` of the `run_finished` event.
    pub fn run_status(&self) -> &str {
        self.of_kind("run_finished")
            .first()
            .and_then(|event| event["status"].as_str())
            .unwrap_or_default()
    }
}
