//! The `hash` plugin: digests of files and texts, written as the classic tools print them.
//!
//! | job | input | output |
//! | --- | --- | --- |
//! | `hash.sha256` | `{path}` or `{text}` | `{sha256: "hex"}`, as `sha256sum` prints it |
//!
//! Files are read in chunks of 64 KiB, with a look at the cancel flag between two, so that a
//! large file neither fills the memory nor delays a cancellation.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{ErrorKind, Read};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256 as Hasher};
use weft_plugin::{Job, JobContext, JobError, JsonSchema};

weft_plugin::export_plugin!(name: "hash", jobs: [Sha256]);

/// The size of the chunks files are read in.
const CHUNK_SIZE: usize = 64 * 1024;

/// Computes the SHA-256 digest of a file or of a text.
#[derive(Debug, Default)]
pub struct Sha256;

/// The input of `hash.sha256`: exactly one of `path` and `text`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["path"]}, {"required": ["text"]}]))]
pub struct Sha256Input {
    /// The file to digest, relative to the engine's working folder or absolute; its bytes
    /// are read as they are.
    path: Option<String>,
    /// The text to digest, as its UTF-8 bytes (with no line feed added).
    text: Option<String>,
}

/// The output of `hash.sha256`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Digested {
    /// The digest as 64 lowercase hexadecimal digits, as `sha256sum` prints it.
    sha256: String,
}

impl Job for Sha256 {
    const NAME: &'static str = "sha256";
    const DESCRIPTION: &'static str =
        "Computes the SHA-256 digest of the file at `path` or of `text`, in lowercase hex.";
    type Input = Sha256Input;
    type Output = Digested;

    fn run(&self, context: &JobContext<'_>, input: Sha256Input) -> Result<Digested, JobError> {
        let mut hasher = Hasher::new();
        match (input.path, input.text) {
            (Some(path), None) => digest_file(context, &path, &mut hasher)?,
            (None, Some(text)) => hasher.update(text.as_bytes()),
            (Some(_), Some(_)) => {
                return Err(JobError::fatal("give `path` or `text`, not both"));
            }
            (None, None) => return Err(JobError::fatal("give `path` or `text`")),
        }

        Ok(Digested {
            sha256: hex(&hasher.finalize()),
        })
    }
}

/// Feeds the file at `path` to `hasher`, chunk by chunk.
fn digest_file(context: &JobContext<'_>, path: &str, hasher: &mut Hasher) -> Result<(), JobError> {
    let mut file = File::open(path).map_err(|error| io_error("cannot open", path, &error))?;
    let mut buffer = vec![0; CHUNK_SIZE];

    loop {
        context.check()?;
        match file.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(read) => hasher.update(&buffer[..read]),
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => return Err(io_error("cannot read", path, &error)),
        }
    }
}

/// A job error for a failed file operation: fatal when another attempt would fail the same way
/// (a missing file, a denied permission), retryable otherwise.
fn io_error(doing: &str, path: &str, error: &std::io::Error) -> JobError {
    let reason = match error.kind() {
        ErrorKind::NotFound => "it does not exist".to_owned(),
        ErrorKind::PermissionDenied => "permission denied".to_owned(),
        ErrorKind::NotADirectory => "a part of the path is not a directory".to_owned(),
        ErrorKind::IsADirectory => "it is a directory".to_owned(),
        _ => return JobError::new(format!("{doing} `{path}`: {error}")),
    };
    JobError::fatal(format!("{doing} `{path}`: {reason}"))
}

/// Writes bytes as lowercase hexadecimal digits.
fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use serde_json::{Value, json};
    use weft_plugin::testing::{Scratch, TestCall};

    use super::*;

    /// A folder of its own under the system's temporary folder, removed on drop.
    fn sha256(input: Value) -> Result<String, JobError> {
        let output = TestCall::new().run(&Sha256, input)?;
        Ok(output["sha256"].as_str().unwrap().to_owned())
    }

    /// What `sha256sum` prints for `path`.
    fn sha256sum(path: &str) -> String {
        let output = Command::new("sha256sum").arg(path).output().unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        text.split_whitespace().next().unwrap().to_owned()
    }

    #[test]
    fn sha256_of_the_empty_text_is_the_known_digest() {
        assert_eq!(
            sha256(json!({"text": ""})).unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn sha256_of_abc_is_the_known_digest() {
        assert_eq!(
            sha256(json!({"text": "abc"})).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sha256_of_a_text_digests_its_utf8_bytes() {
        assert_eq!(
            sha256(json!({"text": "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"}))
                .unwrap(),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn sha256_of_a_file_matches_sha256sum() {
        let scratch = Scratch::new("file");
        let cases: [(&str, Vec<u8>); 4] = [
            ("empty", Vec::new()),
            ("small", b"hello\n".to_vec()),
            ("binary", (0..=255).collect()),
            (
                "chunks",
                (0..(3 * CHUNK_SIZE + 17))
                    .map(|i| (i * 31 % 251) as u8)
                    .collect(),
            ),
        ];

        for (name, bytes) in cases {
            let path = scratch.join(name);
            std::fs::write(&path, &bytes).unwrap();

            assert_eq!(
                sha256(json!({ "path": path })).unwrap(),
                sha256sum(&path),
                "{name}"
            );
        }
    }

    #[test]
    fn sha256_refuses_both_path_and_text() {
        let error = sha256(json!({"path": "a", "text": "b"})).unwrap_err();

        assert_eq!(error.message(), "give `path` or `text`, not both");
        assert!(!error.is_retryable());
    }

    #[test]
    fn sha256_refuses_neither_path_nor_text() {
        let error = sha256(json!({})).unwrap_err();

        assert_eq!(error.message(), "give `path` or `text`");
        assert!(!error.is_retryable());
    }

    #[test]
    fn sha256_refuses_a_missing_file_by_name() {
        let scratch = Scratch::new("missing");
        let path = scratch.join("missing.bin");

        let error = sha256(json!({ "path": path })).unwrap_err();

        assert_eq!(
            error.message(),
            format!("cannot open `{path}`: it does not exist")
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn sha256_stops_reading_a_file_when_cancelled() {
        let scratch = Scratch::new("cancelled");
        let path = scratch.join("a");
        std::fs::write(&path, "a").unwrap();

        let error = TestCall::new()
            .cancelled()
            .run(&Sha256, json!({ "path": path }))
            .unwrap_err();

        assert!(error.is_cancelled());
    }

    #[test]
    fn sha256_schema_asks_for_exactly_one_of_path_and_text() {
        let schema = serde_json::to_value(schemars::schema_for!(Sha256Input)).unwrap();

        assert_eq!(
            schema["oneOf"],
            json!([{"required": ["path"]}, {"required": ["text"]}])
        );
    }
}
