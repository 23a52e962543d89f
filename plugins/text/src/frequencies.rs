//! `text.word_counts`: how often each word of a file appears.

use std::collections::BTreeMap;

use serde::Deserialize;
use weft_plugin::{Job, JobContext, JobError, JsonSchema};

use crate::for_each_chunk;

/// Counts each word of a file, streaming it.
#[derive(Debug, Default)]
pub struct WordCounts;

/// The input of `text.word_counts`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WordCountsInput {
    /// The file to read, relative to the engine's working folder or absolute.
    path: String,
    /// Shorter words are left out (`3` leaves out `a`, `an`, `of`...).
    #[serde(default = "one")]
    min_length: usize,
}

fn one() -> usize {
    1
}

impl Job for WordCounts {
    const NAME: &'static str = "word_counts";
    const DESCRIPTION: &'static str =
        "Counts how often each word of the file at `path` appears, as `{word: count}`.";
    type Input = WordCountsInput;
    /// Each word, lowercased, with the times it appears, in byte order of the words.
    type Output = BTreeMap<String, u64>;

    fn run(
        &self,
        context: &JobContext<'_>,
        input: WordCountsInput,
    ) -> Result<BTreeMap<String, u64>, JobError> {
        let mut counter = Counter::default();
        for_each_chunk(context, &input.path, |chunk| counter.feed(chunk))?;
        counter.end_word();
        counter
            .counts
            .retain(|word, _| word.chars().count() >= input.min_length);
        Ok(counter.counts)
    }
}

/// The counts so far, and the word being read, which may go on in the next chunk.
///
/// A word is a run of ASCII letters and digits, with the apostrophes inside it (`don't`);
/// every other byte separates words. Words are lowercased.
#[derive(Debug, Default)]
struct Counter {
    counts: BTreeMap<String, u64>,
    word: String,
}

impl Counter {
    fn feed(&mut self, chunk: &[u8]) {
        for &byte in chunk {
            if byte.is_ascii_alphanumeric() || (byte == b'\'' && !self.word.is_empty()) {
                self.word.push(char::from(byte.to_ascii_lowercase()));
            } else {
                self.end_word();
            }
        }
    }

    fn end_word(&mut self) {
        let word = self.word.trim_end_matches('\'');
        if !word.is_empty() {
            *self.counts.entry(word.to_owned()).or_default() += 1;
        }
        self.word.clear();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use weft_plugin::testing::TestCall;

    use super::*;
    use weft_plugin::testing::Scratch;

    #[test]
    fn words_are_lowercased_and_counted_across_punctuation() {
        let scratch = Scratch::new("word_counts_basic");
        let path = scratch.write("a.txt", "The cat, the dog; THE end. Don't stop'\n");

        let output = TestCall::new()
            .run(&WordCounts, json!({"path": path}))
            .unwrap();

        assert_eq!(
            output,
            json!({"cat": 1, "dog": 1, "don't": 1, "end": 1, "stop": 1, "the": 3})
        );
    }

    #[test]
    fn a_word_cut_between_two_chunks_counts_once() {
        let mut counter = Counter::default();

        counter.feed(b"hel");
        counter.feed(b"lo world hello");
        counter.end_word();

        assert_eq!(counter.counts["hello"], 2);
        assert_eq!(counter.counts["world"], 1);
    }

    #[test]
    fn short_words_are_left_out_on_request() {
        let scratch = Scratch::new("word_counts_short");
        let path = scratch.write("a.txt", "a an the cart");

        let output = TestCall::new()
            .run(&WordCounts, json!({"path": path, "min_length": 3}))
            .unwrap();

        assert_eq!(output, json!({"cart": 1, "the": 1}));
    }
}
