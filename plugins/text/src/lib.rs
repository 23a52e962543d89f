//! The `text` plugin: jobs on text files whose results can be held against the classic tools.
//!
//! | job | input | output |
//! | --- | --- | --- |
//! | `text.list_files` | `{dir, glob?: "*", recursive?: false}` | `{files: [string]}`, sorted |
//! | `text.read` | `{path}` | the file's text; an error for non-UTF-8 |
//! | `text.count_words` | `{path}` | `{words, lines, bytes}`, as `LC_ALL=C wc -w -l -c` counts |
//! | `text.word_counts` | `{path, min_length?: 1}` | `{word: count}`, words lowercased |
//!
//! Files are read in chunks of 64 KiB, with a look at the cancel flag between two, so that a
//! large file neither fills the memory (`count_words`) nor delays a cancellation.

use std::fs::File;
use std::io::{self, ErrorKind, Read};

use weft_plugin::{JobContext, JobError};

mod count;
mod frequencies;
mod list;
mod read;

pub use count::{CountWords, Counts};
pub use frequencies::WordCounts;
pub use list::{ListFiles, ListedFiles};
pub use read::ReadText;

weft_plugin::export_plugin!(name: "text", jobs: [ListFiles, ReadText, CountWords, WordCounts]);

/// The size of the chunks files are read in.
const CHUNK_SIZE: usize = 64 * 1024;

/// Reads the file at `path` chunk by chunk, handing each to `consume`, and stops with a
/// cancelled error when the job is cancelled between two chunks.
fn for_each_chunk(
    context: &JobContext<'_>,
    path: &str,
    mut consume: impl FnMut(&[u8]),
) -> Result<(), JobError> {
    let mut file = File::open(path).map_err(|error| io_error("cannot open", path, &error))?;
    let mut buffer = vec![0; CHUNK_SIZE];

    loop {
        context.check()?;
        let read = match file.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(read) => read,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(io_error("cannot read", path, &error)),
        };
        consume(&buffer[..read]);
    }
}

/// A job error for a failed file operation: fatal when another attempt would fail the same way
/// (a missing file, a denied permission), retryable otherwise.
fn io_error(doing: &str, path: &str, error: &io::Error) -> JobError {
    let (reason, fatal) = match error.kind() {
        ErrorKind::NotFound => ("it does not exist".to_owned(), true),
        ErrorKind::PermissionDenied => ("permission denied".to_owned(), true),
        ErrorKind::NotADirectory => ("a part of the path is not a directory".to_owned(), true),
        ErrorKind::IsADirectory => ("it is a directory".to_owned(), true),
        ErrorKind::InvalidInput | ErrorKind::InvalidData | ErrorKind::InvalidFilename => {
            (error.to_string(), true)
        }
        _ => (error.to_string(), false),
    };

    let message = format!("{doing} `{path}`: {reason}");
    if fatal {
        JobError::fatal(message)
    } else {
        JobError::new(message)
    }
}
