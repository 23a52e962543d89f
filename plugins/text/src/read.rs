//! `text.read`: a file's text.

use serde::Deserialize;
use weft_plugin::{Job, JobContext, JobError, JsonSchema};

use crate::for_each_chunk;

/// Reads a UTF-8 text file whole.
#[derive(Debug, Default)]
pub struct ReadText;

/// The input of `text.read`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadInput {
    /// The file to read, relative to the engine's working folder or absolute.
    path: String,
}

impl Job for ReadText {
    const NAME: &'static str = "read";
    const DESCRIPTION: &'static str = "Returns the text of the UTF-8 file at `path`.";
    type Input = ReadInput;
    type Output = String;

    fn run(&self, context: &JobContext<'_>, input: ReadInput) -> Result<String, JobError> {
        let mut bytes = Vec::new();
        for_each_chunk(context, &input.path, |chunk| bytes.extend_from_slice(chunk))?;

        String::from_utf8(bytes).map_err(|error| {
            let error = error.utf8_error();
            let offset = error.valid_up_to();
            let problem = match error.error_len() {
                Some(_) => "an invalid byte",
                None => "an incomplete character at the end",
            };
            JobError::fatal(format!(
                "`{}` is not UTF-8: {problem} at byte offset {offset}",
                input.path
            ))
            .with_details(serde_json::json!({ "path": input.path, "offset": offset }))
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use weft_plugin::testing::TestCall;

    use super::*;
    use weft_plugin::testing::Scratch;

    #[test]
    fn read_returns_the_text_of_a_file() {
        let scratch = Scratch::new("read_text");
        let path = scratch.write(
            "a.txt",
            "Emma Woodhouse, handsome, clever, and rich\r\nœuvre ✓\n",
        );

        let output = TestCall::new()
            .run(&ReadText, json!({ "path": path }))
            .unwrap();

        assert_eq!(
            output,
            json!("Emma Woodhouse, handsome, clever, and rich\r\nœuvre ✓\n")
        );
    }

    #[test]
    fn read_returns_an_empty_string_for_an_empty_file() {
        let scratch = Scratch::new("read_empty");
        let path = scratch.write("empty.txt", "");

        let output = TestCall::new()
            .run(&ReadText, json!({ "path": path }))
            .unwrap();

        assert_eq!(output, json!(""));
    }

    #[test]
    fn read_keeps_characters_split_between_chunks() {
        let scratch = Scratch::new("read_split");
        let mut text = "a".repeat(crate::CHUNK_SIZE - 1);
        text.push('é');
        text.push_str(&"b".repeat(crate::CHUNK_SIZE));
        let path = scratch.write("big.txt", &text);

        let output = TestCall::new()
            .run(&ReadText, json!({ "path": path }))
            .unwrap();

        assert_eq!(output.as_str(), Some(text.as_str()));
    }

    #[test]
    fn read_refuses_non_utf8_naming_the_path_and_the_offset() {
        let scratch = Scratch::new("read_latin1");
        let path = scratch.write("latin1.txt", b"caf\xe9 au lait");

        let error = TestCall::new()
            .run(&ReadText, json!({ "path": path }))
            .unwrap_err();

        assert_eq!(
            error.message(),
            format!("`{path}` is not UTF-8: an invalid byte at byte offset 3")
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn read_refuses_a_character_cut_at_the_end() {
        let scratch = Scratch::new("read_cut");
        let path = scratch.write("cut.txt", b"ab\xe2\x9c");

        let error = TestCall::new()
            .run(&ReadText, json!({ "path": path }))
            .unwrap_err();

        assert_eq!(
            error.message(),
            format!("`{path}` is not UTF-8: an incomplete character at the end at byte offset 2")
        );
    }

    #[test]
    fn read_refuses_a_missing_file_by_name() {
        let scratch = Scratch::new("read_missing");
        let path = scratch.join("missing.txt");

        let error = TestCall::new()
            .run(&ReadText, json!({ "path": path }))
            .unwrap_err();

        assert_eq!(
            error.message(),
            format!("cannot open `{path}`: it does not exist")
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn read_refuses_a_folder() {
        let scratch = Scratch::new("read_folder");
        let path = scratch.path().to_str().unwrap().to_owned();

        let error = TestCall::new()
            .run(&ReadText, json!({ "path": path }))
            .unwrap_err();

        assert_eq!(
            error.message(),
            format!("cannot read `{path}`: it is a directory")
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn read_stops_when_cancelled() {
        let scratch = Scratch::new("read_cancelled");
        let path = scratch.write("a.txt", "a");

        let error = TestCall::new()
            .cancelled()
            .run(&ReadText, json!({ "path": path }))
            .unwrap_err();

        assert!(error.is_cancelled());
    }
}
