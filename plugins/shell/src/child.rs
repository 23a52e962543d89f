//! A running program: its output pipes and its end, watched together by one `poll` that a
//! cancellation or a deadline interrupts.
//!
//! # Invariants
//!
//! The program leads a process group of its own, whose id is its pid. The program is reaped
//! (its pid freed for reuse) only after the last signal to the group has been sent: until
//! then it stays a zombie, and the group's id cannot name another group.

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::process::{ChildStderr, ChildStdin, ChildStdout, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, kill_process_group, waitid};
use weft_plugin::{JobContext, JobError};

use crate::{Command, RunInput};

/// The first pause between two looks at the cancellation, short so that a cancelled job
/// stops at once; output and the program's end wake the wait before it is over.
const FIRST_INTERVAL: Duration = Duration::from_micros(500);

/// The longest pause between two looks at the cancellation.
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

/// One of the program's outputs, read as it comes.
struct Output<P> {
    /// `None` once it reached its end.
    pipe: Option<P>,
    bytes: Vec<u8>,
}

impl<P: Read + AsFd> Output<P> {
    fn new(pipe: P) -> io::Result<Self> {
        rustix::io::ioctl_fionbio(&pipe, true)?;
        Ok(Self {
            pipe: Some(pipe),
            bytes: Vec::new(),
        })
    }

    /// Reads what is there without blocking; closes the output at its end.
    fn read(&mut self) -> io::Result<()> {
        let Some(pipe) = &mut self.pipe else {
            return Ok(());
        };
        let mut buffer = [0_u8; 16 * 1024];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) => {
                    self.pipe = None;
                    return Ok(());
                }
                Ok(read) => self.bytes.extend_from_slice(&buffer[..read]),
                Err(error) if error.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }
}

/// A program that runs, with its output pipes.
pub(crate) struct Child {
    process: std::process::Child,
    /// The program's pid, which is also its process group's id.
    group: Pid,
    stdout: Output<ChildStdout>,
    stderr: Output<ChildStderr>,
    /// A descriptor that becomes readable when the program ends (Linux); without one, the
    /// wait looks at the program after each pause.
    exit: Option<OwnedFd>,
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
        match Self::watch(&mut process, input.stdin.clone()) {
            Ok((stdout, stderr)) => Ok(Self {
                exit: exit_descriptor(group),
                process,
                group,
                stdout,
                stderr,
            }),
            Err(error) => {
                let _ = kill_process_group(group, Signal::KILL);
                let _ = process.wait();
                Err(JobError::new(format!(
                    "cannot watch the pipes of `{}`: {error}",
                    command.label
                )))
            }
        }
    }

    /// Starts the thread that writes the standard input, and readies the outputs to be read
    /// without blocking.
    fn watch(
        process: &mut std::process::Child,
        stdin: Option<String>,
    ) -> io::Result<(Output<ChildStdout>, Output<ChildStderr>)> {
        if let (Some(pipe), Some(text)) = (process.stdin.take(), stdin) {
            thread::Builder::new()
                .name("weft-shell-stdin".to_owned())
                .spawn(move || feed(pipe, &text))?;
        }
        match (process.stdout.take(), process.stderr.take()) {
            (Some(stdout), Some(stderr)) => Ok((Output::new(stdout)?, Output::new(stderr)?)),
            _ => Err(io::Error::other("the output pipes are missing")),
        }
    }

    /// Waits for the program to end and its outputs to close, and returns its status with
    /// what it wrote; stops it when the job is cancelled or its deadline passes.
    pub(crate) fn wait(
        mut self,
        context: &JobContext<'_>,
    ) -> Result<(ExitStatus, Vec<u8>, Vec<u8>), Interrupted> {
        if let Err(interrupted) = self.wait_for_end(context) {
            self.stop(context);
            return Err(interrupted);
        }
        let status = self.process.wait().map_err(failed)?;
        Ok((status, self.stdout.bytes, self.stderr.bytes))
    }

    /// Reads the outputs until both close and the program has ended. Between two looks at
    /// the cancellation and the deadline it sleeps in `poll`, which output or the program's
    /// end cut short; the pauses grow while nothing happens.
    fn wait_for_end(&mut self, context: &JobContext<'_>) -> Result<(), Interrupted> {
        let mut interval = FIRST_INTERVAL;
        let mut ended = false;
        loop {
            ended = ended || self.has_exited().map_err(failed)?;
            let open = self.stdout.pipe.is_some() || self.stderr.pipe.is_some();
            if ended && !open {
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

            let woken = self.poll(ended, pause).map_err(failed)?;
            self.stdout.read().map_err(failed)?;
            self.stderr.read().map_err(failed)?;
            interval = if woken {
                FIRST_INTERVAL
            } else {
                (interval * 2).min(MAX_INTERVAL)
            };
        }
    }

    /// Sleeps until an output has something to read or closes, the program ends, or
    /// `pause` passes; says whether something happened.
    fn poll(&self, ended: bool, pause: Duration) -> io::Result<bool> {
        let mut watched = Vec::with_capacity(3);
        let readable = PollFlags::IN | PollFlags::HUP;
        if let Some(pipe) = &self.stdout.pipe {
            watched.push(PollFd::new(pipe, readable));
        }
        if let Some(pipe) = &self.stderr.pipe {
            watched.push(PollFd::new(pipe, readable));
        }
        if let (Some(exit), false) = (&self.exit, ended) {
            watched.push(PollFd::new(exit, PollFlags::IN));
        }
        let timeout = Timespec {
            tv_sec: 0,
            tv_nsec: i64::from(pause.subsec_nanos()),
        };
        match poll(&mut watched, Some(&timeout)) {
            Ok(ready) => Ok(ready > 0),
            Err(rustix::io::Errno::INTR) => Ok(true),
            Err(error) => Err(error.into()),
        }
    }

    /// Whether the program has ended, without reaping it.
    fn has_exited(&self) -> io::Result<bool> {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        Ok(waitid(WaitId::Pid(self.group), options)?.is_some())
    }

    /// Stops the program's whole group: `SIGTERM`, a wait of half the grace period (at most
    /// 5 seconds) for the program to end, then `SIGKILL` to whatever is left; then reaps
    /// the program. Its outputs are dropped, which closes the pipes.
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

/// A descriptor that becomes readable when the program ends: a pidfd, on Linux 5.3 and
/// later. `None` elsewhere, and then the wait looks after each pause.
fn exit_descriptor(pid: Pid) -> Option<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

fn failed(error: io::Error) -> Interrupted {
    Interrupted::Failed(JobError::new(format!(
        "cannot wait for the program: {error}"
    )))
}

/// Writes `text` to the program's standard input, then closes it. A program that exits
/// without reading it all is no error.
fn feed(mut pipe: ChildStdin, text: &str) {
    let _ = pipe.write_all(text.as_bytes());
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
