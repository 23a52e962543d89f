//! A running program: its pipes, each on a thread of its own, and the wait that a
//! cancellation or a deadline interrupts.
//!
//! # Invariants
//!
//! The program leads a process group of its own, whose id is its pid. The program is reaped
//! (its pid freed for reuse) only after the last signal to the group has been sent: until
//! then it stays a zombie, and the group's id cannot name another group.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::process::CommandExt as _;
use std::process::{ChildStdin, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, kill_process_group, waitid};
use weft_plugin::{JobContext, JobError};

use crate::{Command, RunInput};

/// The first pause between two looks at the program, short so that a quick program
/// returns at once.
const FIRST_INTERVAL: Duration = Duration::from_micros(200);

/// The longest pause between two looks at the program.
const MAX_INTERVAL: Duration = Duration::from_millis(20);

/// The longest wait between `SIGTERM` and `SIGKILL`.
const MAX_TERM_WAIT: Duration = Duration::from_secs(5);

/// Why a wait ended before the program did.
#[derive(Debug)]
pub(crate) enum Interrupted {
    /// The job was cancelled.
    Cancelled,
    /// The job's deadline, which has passed.
    TimedOut(Instant),
    /// Waiting failed.
    Failed(JobError),
}

/// A thread that reads one of the program's outputs to its end.
type Reader = JoinHandle<io::Result<Vec<u8>>>;

/// A program that runs, with the threads that feed and drain its pipes.
pub(crate) struct Child {
    process: std::process::Child,
    /// The program's pid, which is also its process group's id.
    group: Pid,
    stdout: Reader,
    stderr: Reader,
}

impl Child {
    /// Starts the program in a process group of its own, with its standard input fed from
    /// `input.stdin` and its standard output and error captured.
    pub(crate) fn spawn(command: &Command<'_>, input: &RunInput) -> Result<Self, JobError> {
        let mut builder = std::process::Command::new(command.program);
        builder
            .args(&command.args)
            .envs(&input.env)
            .stdin(if input.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if let Some(cwd) = &input.cwd {
            builder.current_dir(cwd);
        }

        let mut process = builder
            .spawn()
            .map_err(|error| spawn_error(command, &error))?;
        let group = Pid::from_child(&process);
        let pipes = Self::start_threads(&mut process, input.stdin.clone());
        match pipes {
            Ok((stdout, stderr)) => Ok(Self {
                process,
                group,
                stdout,
                stderr,
            }),
            Err(error) => {
                let _ = kill_process_group(group, Signal::KILL);
                let _ = process.wait();
                Err(JobError::new(format!(
                    "cannot start a thread for `{}`: {error}",
                    command.label
                )))
            }
        }
    }

    /// Starts the threads that write the standard input and read the outputs.
    fn start_threads(
        process: &mut std::process::Child,
        stdin: Option<String>,
    ) -> io::Result<(Reader, Reader)> {
        if let (Some(pipe), Some(text)) = (process.stdin.take(), stdin) {
            thread::Builder::new()
                .name("weft-shell-stdin".to_owned())
                .spawn(move || feed(pipe, &text))?;
        }

        let stdout = process.stdout.take().map(drain("weft-shell-stdout"));
        let stderr = process.stderr.take().map(drain("weft-shell-stderr"));
        match (stdout, stderr) {
            (Some(stdout), Some(stderr)) => Ok((stdout?, stderr?)),
            _ => Err(io::Error::other("the output pipes are missing")),
        }
    }

    /// Waits for the program to end and its outputs to close, and returns its status with
    /// what it wrote; stops it when the job is cancelled or its deadline passes.
    pub(crate) fn wait(
        mut self,
        context: &JobContext<'_>,
    ) -> Result<(ExitStatus, Vec<u8>, Vec<u8>), Interrupted> {
        let waited = wait_until(context, || {
            Ok(self.has_exited()? && self.stdout.is_finished() && self.stderr.is_finished())
        });
        if let Err(interrupted) = waited {
            self.stop(context);
            return Err(interrupted);
        }

        let status = self.process.wait().map_err(|error| {
            Interrupted::Failed(JobError::new(format!(
                "cannot wait for the program: {error}"
            )))
        })?;
        let stdout = join(self.stdout)?;
        let stderr = join(self.stderr)?;
        Ok((status, stdout, stderr))
    }

    /// Whether the program has ended, without reaping it.
    fn has_exited(&self) -> io::Result<bool> {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        Ok(waitid(WaitId::Pid(self.group), options)?.is_some())
    }

    /// Stops the program's whole group: `SIGTERM`, a wait of half the grace period (at most
    /// 5 seconds) for the program to end, then `SIGKILL` to whatever is left; then reaps
    /// the program. The output threads are left to end when the pipes close.
    fn stop(mut self, context: &JobContext<'_>) {
        let _ = kill_process_group(self.group, Signal::TERM);

        let patience = (context.grace() / 2).min(MAX_TERM_WAIT);
        let until = Instant::now() + patience;
        let mut interval = FIRST_INTERVAL;
        while Instant::now() < until && !self.has_exited().unwrap_or(true) {
            thread::sleep(interval.min(until.saturating_duration_since(Instant::now())));
            interval = (interval * 2).min(MAX_INTERVAL);
        }

        let _ = kill_process_group(self.group, Signal::KILL);
        let _ = self.process.wait();
    }
}

/// Waits until `done` says so, looking at it after pauses that grow from 200 µs to 20 ms;
/// stops early when the job is cancelled or its deadline passes.
fn wait_until(
    context: &JobContext<'_>,
    mut done: impl FnMut() -> io::Result<bool>,
) -> Result<(), Interrupted> {
    let mut interval = FIRST_INTERVAL;
    loop {
        let finished = done().map_err(|error| {
            Interrupted::Failed(JobError::new(format!(
                "cannot wait for the program: {error}"
            )))
        })?;
        if finished {
            return Ok(());
        }

        if context.is_cancelled() {
            return Err(Interrupted::Cancelled);
        }
        let mut pause = interval;
        if let Some(deadline) = context.deadline() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Interrupted::TimedOut(deadline));
            }
            pause = pause.min(left);
        }

        context.sleep(pause).map_err(|_| Interrupted::Cancelled)?;
        interval = (interval * 2).min(MAX_INTERVAL);
    }
}

/// Writes `text` to the program's standard input, then closes it. A program that exits
/// without reading it all is no error.
fn feed(mut pipe: ChildStdin, text: &str) {
    let _ = pipe.write_all(text.as_bytes());
}

/// Starts a thread that reads a pipe to its end.
fn drain<R: Read + Send + 'static>(name: &'static str) -> impl FnOnce(R) -> io::Result<Reader> {
    move |mut pipe| {
        thread::Builder::new().name(name.to_owned()).spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes)?;
            Ok(bytes)
        })
    }
}

/// The bytes a finished reader thread read.
fn join(reader: Reader) -> Result<Vec<u8>, Interrupted> {
    let read = reader.join().map_err(|_| {
        Interrupted::Failed(JobError::new("the thread reading the output panicked"))
    })?;
    read.map_err(|error| {
        Interrupted::Failed(JobError::new(format!(
            "cannot read the program's output: {error}"
        )))
    })
}

/// The job error for a program that could not start: fatal, unless the system lacked a
/// resource for a moment (too many processes, too little memory, a busy executable).
fn spawn_error(command: &Command<'_>, error: &io::Error) -> JobError {
    let program = command.program;
    match error.kind() {
        ErrorKind::NotFound => JobError::fatal(format!("program `{program}` not found")),
        ErrorKind::PermissionDenied => {
            JobError::fatal(format!("cannot run `{program}`: permission denied"))
        }
        ErrorKind::WouldBlock
        | ErrorKind::OutOfMemory
        | ErrorKind::ExecutableFileBusy
        | ErrorKind::Interrupted => JobError::new(format!("cannot run `{program}`: {error}")),
        _ => JobError::fatal(format!("cannot run `{program}`: {error}")),
    }
}
