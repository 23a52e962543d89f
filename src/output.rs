//! Where results go: stdout, written so that a closed pipe (`weft graph wf.yaml | head`) ends
//! the program quietly instead of as an error.

use std::io::{self, Write};

/// Writes `text` to stdout. A closed pipe is not an error: the reader has what it wanted.
pub fn stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes `text` to stderr, ignoring failure: there is nowhere left to report it.
pub fn stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}
