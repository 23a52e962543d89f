//! Helpers shared by the integration test binaries: running the `weft` binary from the root
//! of the repository, with a guard against hangs.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long one run of `weft` may take before the test fails as hung. Generous on purpose:
/// it catches a hang, not a slow machine.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// What one run of `weft` did.
#[derive(Debug)]
pub struct Output {
    /// The exit code; `-1` when the process was ended by a signal.
    pub code: i32,
    /// Everything written to stdout, decoded lossily.
    pub stdout: String,
    /// Everything written to stderr, decoded lossily.
    pub stderr: String,
}

/// Runs `weft ARGS...` with the repository root as the current directory, so that relative
/// paths such as `tests/fixtures/invalid/cycle.yaml` work and appear as given in messages.
/// `RUST_LOG` and `WEFT_PLUGIN_PATH` are cleared: plugins are found beside the binary only.
///
/// # Panics
///
/// When the binary cannot be started, or when it has not finished after [`HANG_GUARD`]
/// (the process is killed and the test fails with "hung").
pub fn weft<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shown: Vec<String> = args
        .iter()
        .map(|arg| arg.as_ref().to_string_lossy().into_owned())
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(args)
        .current_dir(root)
        .env_remove("RUST_LOG")
        .env_remove("WEFT_PLUGIN_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start weft: {error}"));

    // Drained on threads, so that a large output cannot fill a pipe and stall the child.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());

    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > HANG_GUARD => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "hung: `weft {}` did not finish within {HANG_GUARD:?}",
                    shown.join(" ")
                );
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(error) => panic!("cannot wait for weft: {error}"),
        }
    };

    Output {
        code: status.code().unwrap_or(-1),
        stdout: join(stdout),
        stderr: join(stderr),
    }
}

/// Reads a child's pipe to its end on a thread of its own, so that a large output cannot fill
/// the pipe and stall the child.
pub fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// What a [`drain`] thread read, decoded lossily.
pub fn join(reader: thread::JoinHandle<Vec<u8>>) -> String {
    let bytes = reader.join().expect("the pipe reader should not panic");
    String::from_utf8_lossy(&bytes).into_owned()
}
