//! `text.count_words`: words, lines and bytes, as `LC_ALL=C wc -w -l -c` counts them.

use serde::{Deserialize, Serialize};
use weft_plugin::{Job, JobContext, JobError, JsonSchema};

use crate::for_each_chunk;

/// Counts the words, lines and bytes of a file, streaming it.
#[derive(Debug, Default)]
pub struct CountWords;

/// The input of `text.count_words`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountWordsInput {
    /// The file to count, relative to the engine's working folder or absolute. It may hold
    /// any bytes, not only UTF-8.
    path: String,
}

/// The output of `text.count_words`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[cfg_attr(test, derive(Deserialize))]
pub struct Counts {
    /// The words, as `wc` counts them in the C locale: the runs of bytes between ASCII
    /// whitespace (space, tab, line feed, vertical tab, form feed, carriage return) that hold
    /// at least one printable ASCII character. Other bytes (control characters, and every
    /// byte of a non-ASCII character) neither start a word nor end one, so `café` is a word
    /// and a run of Cyrillic letters or a lone `—` is none.
    pub words: u64,
    /// The lines: the line feeds, so that a last line without one does not count.
    pub lines: u64,
    /// The size of the file, in bytes.
    pub bytes: u64,
}

impl Job for CountWords {
    const NAME: &'static str = "count_words";
    const DESCRIPTION: &'static str =
        "Counts the words, lines and bytes of the file at `path` as `LC_ALL=C wc` does.";
    type Input = CountWordsInput;
    type Output = Counts;

    fn run(&self, context: &JobContext<'_>, input: CountWordsInput) -> Result<Counts, JobError> {
        let mut counter = Counter::default();
        for_each_chunk(context, &input.path, |chunk| counter.feed(chunk))?;
        Ok(counter.counts)
    }
}

/// The counts so far, and whether the last byte seen was inside a word, so that a word cut
/// between two chunks counts once.
#[derive(Debug, Default)]
struct Counter {
    counts: Counts,
    in_word: bool,
}

impl Counter {
    /// Counts the next bytes of the file.
    fn feed(&mut self, chunk: &[u8]) {
        let mut in_word = self.in_word;
        let mut words = 0;
        let mut lines = 0;

        for &byte in chunk {
            match byte {
                b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' => {
                    lines += u64::from(byte == b'\n');
                    in_word = false;
                }
                // Printable ASCII, space aside.
                0x21..=0x7e => {
                    words += u64::from(!in_word);
                    in_word = true;
                }
                _ => {}
            }
        }

        self.in_word = in_word;
        self.counts.words += words;
        self.counts.lines += lines;
        self.counts.bytes += chunk.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use serde_json::json;
    use weft_plugin::testing::TestCall;

    use super::*;
    use crate::CHUNK_SIZE;
    use weft_plugin::testing::Scratch;

    fn count(path: &str) -> Counts {
        let output = TestCall::new()
            .run(&CountWords, json!({ "path": path }))
            .unwrap();
        serde_json::from_value(output).unwrap()
    }

    /// What `LC_ALL=C wc -w -l -c` says of `path`.
    fn wc(path: &str) -> Counts {
        let output = Command::new("wc")
            .args(["-w", "-l", "-c", path])
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        let numbers: Vec<u64> = text
            .split_whitespace()
            .take(3)
            .map(|number| number.parse().unwrap())
            .collect();
        Counts {
            lines: numbers[0],
            words: numbers[1],
            bytes: numbers[2],
        }
    }

    /// Files on which `wc` and `count_words` must agree.
    fn tricky_files() -> Vec<(&'static str, Vec<u8>)> {
        let mut across_chunks = vec![b'x'; CHUNK_SIZE - 2];
        across_chunks.extend_from_slice(b" word-cut-by-the-chunk-boundary\n");
        across_chunks.extend(b"a b\n".repeat(CHUNK_SIZE / 2));

        let mut space_at_boundary = vec![b'y'; CHUNK_SIZE - 1];
        space_at_boundary.extend_from_slice(b" z");

        vec![
            ("empty", Vec::new()),
            ("trailing_word", b"one two three".to_vec()),
            ("crlf", b"one two\r\nthree\r\n\r\n".to_vec()),
            ("only_spaces", b" \t \n\n \r ".to_vec()),
            (
                "vertical_tab_and_form_feed",
                b"a\x0bb\x0cc d\x0b\x0c".to_vec(),
            ),
            ("utf8", "œuvre déjà vu, naïve ✓ok\n".as_bytes().to_vec()),
            (
                "latin1_inside_words",
                b"caf\xe9 na\xefve r\xe9sum\xe9\n".to_vec(),
            ),
            ("nul_inside_a_word", b"a\0b c\n".to_vec()),
            (
                "non_ascii_runs",
                "one — two\nпривет мир\n".as_bytes().to_vec(),
            ),
            (
                "control_bytes_around_words",
                b"\x01a \x01\x01 b\x7f \x7f\x80\n".to_vec(),
            ),
            ("binary", (0..=255_u8).cycle().take(4096).collect()),
            ("across_chunks", across_chunks),
            ("space_at_boundary", space_at_boundary),
        ]
    }

    #[test]
    fn count_words_agrees_with_wc_on_tricky_files() {
        let scratch = Scratch::new("count_tricky");

        for (name, bytes) in tricky_files() {
            let path = scratch.write(name, &bytes);

            assert_eq!(count(&path), wc(&path), "{name}");
        }
    }

    #[test]
    fn count_words_counts_a_trailing_word_without_newline() {
        let scratch = Scratch::new("count_trailing");
        let path = scratch.write("a.txt", "one two\nthree");

        assert_eq!(
            count(&path),
            Counts {
                words: 3,
                lines: 1,
                bytes: 13
            }
        );
    }

    #[test]
    fn count_words_counts_only_runs_with_a_printable_character_as_words() {
        let scratch = Scratch::new("count_binary");
        let path = scratch.write(
            "a.bin",
            b"\x01 \xff\xfe\n\x7f\x0b\x0c\r\xa0 caf\xc3\xa9 \xe2\x80\x94 a\x01b",
        );

        assert_eq!(
            count(&path),
            Counts {
                words: 2,
                lines: 1,
                bytes: 24
            }
        );
    }

    #[test]
    fn count_words_carries_a_word_across_any_split() {
        let text = b"  alpha\tbeta\r\ngamma \x0bdelta\x0c\n\nepsilon";
        let mut whole = Counter::default();
        whole.feed(text);

        for split in 0..=text.len() {
            let mut parts = Counter::default();
            parts.feed(&text[..split]);
            parts.feed(&text[split..]);

            assert_eq!(parts.counts, whole.counts, "split at {split}");
        }
        assert_eq!(
            whole.counts,
            Counts {
                words: 5,
                lines: 3,
                bytes: text.len() as u64
            }
        );
    }

    #[test]
    fn count_words_refuses_a_missing_file_by_name() {
        let scratch = Scratch::new("count_missing");
        let path = scratch.join("missing.txt");

        let error = TestCall::new()
            .run(&CountWords, json!({ "path": path }))
            .unwrap_err();

        assert_eq!(
            error.message(),
            format!("cannot open `{path}`: it does not exist")
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn count_words_stops_when_cancelled() {
        let scratch = Scratch::new("count_cancelled");
        let path = scratch.write("a.txt", "a b c");

        let error = TestCall::new()
            .cancelled()
            .run(&CountWords, json!({ "path": path }))
            .unwrap_err();

        assert!(error.is_cancelled());
    }
}
