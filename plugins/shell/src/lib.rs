//! The `shell` plugin: runs programs and returns what they printed.
//!
//! | job | input | output |
//! | --- | --- | --- |
//! | `shell.run` | `{argv, stdin?, env?, cwd?, json?, allow_failure?, shell?}` | `{exit_code, stdout, stderr}` |
//!
//! The program runs in a process group of its own. When the job is cancelled, or its
//! deadline passes, the whole group gets `SIGTERM`, then `SIGKILL` once half the grace
//! period (at most 5 seconds) has gone by, so that nothing the program started outlives
//! the job.
//!
//! The job ends when the program has exited and its standard output and error are closed:
//! a background process that keeps them open keeps the job waiting (as `$(...)` waits in a
//! shell), until it ends or the job is cancelled. Both outputs are held in memory whole.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weft_plugin::{Job, JobContext, JobError, JsonSchema};

mod child;

use child::{Child, Interrupted};

weft_plugin::export_plugin!(name: "shell", jobs: [Run]);

/// How many lines of the standard error an error for a failed program carries.
const STDERR_TAIL_LINES: usize = 20;

/// How many bytes of output that is not JSON an error quotes.
const QUOTED_BYTES: usize = 200;

/// Runs a program and captures its output.
#[derive(Debug, Default)]
pub struct Run;

/// The input of `shell.run`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunInput {
    /// The program and its arguments, run directly, without a shell: no globbing, no
    /// quoting, no `$VARIABLES`. The program is looked up in `PATH` unless it holds a `/`.
    /// With `shell: true`, a single element: the script for `sh -c`.
    #[schemars(length(min = 1))]
    argv: Vec<String>,
    /// Text to write to the program's standard input, which is then closed. Without it, the
    /// standard input is empty (`/dev/null`).
    stdin: Option<String>,
    /// Variables to add to the environment, which is otherwise inherited from the engine; a
    /// variable given here replaces one of the same name.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// The folder to run in; the engine's working folder when left out.
    cwd: Option<String>,
    /// Whether to parse the standard output as JSON and return the value rather than the text.
    #[serde(default)]
    json: bool,
    /// Whether to return the output of a program that exits with a non-zero code or is
    /// killed by a signal, rather than fail.
    #[serde(default)]
    allow_failure: bool,
    /// Whether to run the single element of `argv` as a script, with `sh -c`.
    #[serde(default)]
    shell: bool,
}

/// The output of `shell.run`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(extend("required" = ["exit_code", "stdout", "stderr"]))]
pub struct RunOutput {
    /// The exit code; `null` when the program was killed by a signal.
    exit_code: Option<i32>,
    /// The standard output: text (bytes that are not UTF-8 become U+FFFD), or, with `json:
    /// true`, the JSON value it holds.
    stdout: Value,
    /// The standard error, as text (bytes that are not UTF-8 become U+FFFD).
    stderr: String,
}

impl Job for Run {
    const NAME: &'static str = "run";
    const DESCRIPTION: &'static str =
        "Runs `argv` (or, with `shell`, `sh -c` on it) and returns its exit code and output.";
    const WAITS: bool = true;
    type Input = RunInput;
    type Output = RunOutput;

    fn run(&self, context: &JobContext<'_>, input: RunInput) -> Result<RunOutput, JobError> {
        let started = Instant::now();
        context.check()?;
        let command = Command::new(&input)?;

        let child = Child::spawn(&command, &input)?;
        let (status, stdout, stderr) = child
            .wait(context)
            .map_err(|interrupted| interrupted_error(interrupted, &command.label, started))?;

        let exit_code = status.code();
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        if !input.allow_failure {
            check_status(&command.label, status, &stderr)?;
        }

        let stdout = if input.json {
            parse_json(&command.label, &stdout)?
        } else {
            Value::String(String::from_utf8_lossy(&stdout).into_owned())
        };
        Ok(RunOutput {
            exit_code,
            stdout,
            stderr,
        })
    }
}

/// The job error for a wait that ended before the program did.
fn interrupted_error(interrupted: Interrupted, label: &str, started: Instant) -> JobError {
    match interrupted {
        Interrupted::Cancelled => JobError::cancelled(),
        Interrupted::TimedOut(deadline) => {
            let timeout = round_to_millis(deadline.saturating_duration_since(started));
            JobError::new(format!("`{label}` timed out after {timeout:?}"))
        }
        Interrupted::Failed(error) => error,
    }
}

/// `duration` to the nearest millisecond, for messages: the deadline is set a little before
/// the job starts to count.
fn round_to_millis(duration: Duration) -> Duration {
    let millis = (duration.as_micros() + 500) / 1000;
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// What to run, checked.
struct Command<'a> {
    /// The program.
    program: &'a str,
    /// Its arguments.
    args: Vec<&'a str>,
    /// How errors name the program: `argv[0]`, or `sh -c` and the start of the script.
    label: String,
}

impl<'a> Command<'a> {
    /// Checks `argv`, `shell` and `cwd`.
    fn new(input: &'a RunInput) -> Result<Self, JobError> {
        let Some(first) = input.argv.first() else {
            return Err(JobError::fatal(
                "`argv` is empty: give the program and its arguments",
            ));
        };

        if let Some(cwd) = &input.cwd
            && !Path::new(cwd).is_dir()
        {
            let reason = if Path::new(cwd).exists() {
                "it is not a directory"
            } else {
                "it does not exist"
            };
            return Err(JobError::fatal(format!(
                "cannot run in `cwd` `{cwd}`: {reason}"
            )));
        }

        if !input.shell {
            return Ok(Self {
                program: first,
                args: input.argv[1..].iter().map(String::as_str).collect(),
                label: first.clone(),
            });
        }

        if input.argv.len() != 1 {
            return Err(JobError::fatal(format!(
                "with `shell: true`, `argv` holds one element, the script for `sh -c`, not {}",
                input.argv.len()
            )));
        }
        Ok(Self {
            program: "sh",
            args: vec!["-c", first],
            label: format!("sh -c {}", shorten(first, 60)),
        })
    }
}

/// The first `max` characters of `text`, with an ellipsis when it is longer.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Fails for a non-zero exit code or a death by signal.
///
/// Both may be retried: a command that fails once (a network call, a busy resource) may pass
/// the next time, and a stage retries only when its `retry` asks for it. What cannot change
/// between attempts (a program that is not there, a `cwd` that does not exist) is fatal.
fn check_status(label: &str, status: ExitStatus, stderr: &str) -> Result<(), JobError> {
    use std::os::unix::process::ExitStatusExt as _;

    let stderr_tail = tail(stderr, STDERR_TAIL_LINES);
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(JobError::new(format!("`{label}` exited with code {code}"))
            .with_details(serde_json::json!({ "exit_code": code, "stderr_tail": stderr_tail }))),
        (None, signal) => {
            let signal = signal.unwrap_or_default();
            Err(JobError::new(format!("`{label}` killed by signal {signal}")).with_details(
                serde_json::json!({ "exit_code": null, "signal": signal, "stderr_tail": stderr_tail }),
            ))
        }
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Parses the standard output as JSON.
fn parse_json(label: &str, stdout: &[u8]) -> Result<Value, JobError> {
    serde_json::from_slice(stdout).map_err(|error| {
        let start = String::from_utf8_lossy(&stdout[..stdout.len().min(QUOTED_BYTES)]);
        JobError::fatal(format!(
            "the output of `{label}` is not JSON ({error}); it starts with: {start:?}"
        ))
    })
}

#[cfg(test)]
mod tests;
