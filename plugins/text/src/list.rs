//! `text.list_files`: the files of a folder whose names match a glob.

use std::fs;
use std::path::Path;

use glob::Pattern;
use serde::{Deserialize, Serialize};
use weft_plugin::{Job, JobContext, JobError, JsonSchema};

use crate::io_error;

/// Lists the files of a folder, sorted, optionally with its subfolders.
#[derive(Debug, Default)]
pub struct ListFiles;

/// The input of `text.list_files`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListFilesInput {
    /// The folder to list, relative to the engine's working folder or absolute.
    dir: String,
    /// The pattern a file must match, in the `glob` crate's syntax (`*`, `?`, `[a-z]`,
    /// `**`). It is matched against the file's name, or, when `recursive`, against its path
    /// relative to `dir` with `/` between folders, where `*` matches `/` too (so `*.txt`
    /// finds text files at any depth). Names that start with a dot are not special.
    #[serde(default = "default_glob")]
    glob: String,
    /// Whether to list the files of subfolders too, at any depth. Symbolic links to folders
    /// are not followed.
    #[serde(default)]
    recursive: bool,
}

fn default_glob() -> String {
    "*".to_owned()
}

/// The output of `text.list_files`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListedFiles {
    /// The paths of the regular files (and of symbolic links to regular files) that match,
    /// each `dir` joined with the path relative to it, sorted in byte order.
    files: Vec<String>,
}

impl Job for ListFiles {
    const NAME: &'static str = "list_files";
    const DESCRIPTION: &'static str =
        "Lists the files in `dir` (and its subfolders, if `recursive`) that match `glob`.";
    type Input = ListFilesInput;
    type Output = ListedFiles;

    fn run(
        &self,
        context: &JobContext<'_>,
        input: ListFilesInput,
    ) -> Result<ListedFiles, JobError> {
        let pattern = Pattern::new(&input.glob).map_err(|error| {
            JobError::fatal(format!("invalid `glob` `{}`: {error}", input.glob))
        })?;
        let root = Path::new(&input.dir);
        let metadata =
            fs::metadata(root).map_err(|error| io_error("cannot list", &input.dir, &error))?;
        if !metadata.is_dir() {
            return Err(JobError::fatal(format!(
                "cannot list `{}`: it is not a directory",
                input.dir
            )));
        }

        let mut files = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(folder) = folders.pop() {
            context.check()?;
            let listing = Listing {
                root,
                folder: &folder,
                pattern: &pattern,
                recursive: input.recursive,
            };
            listing.read(&input.dir, &mut files, &mut folders)?;
        }

        files.sort_unstable();
        Ok(ListedFiles { files })
    }
}

/// One folder to read, under the root.
struct Listing<'a> {
    root: &'a Path,
    /// The folder's path relative to the root, `/`-separated; empty for the root itself.
    folder: &'a str,
    pattern: &'a Pattern,
    recursive: bool,
}

impl Listing<'_> {
    /// Adds the matching files of the folder to `files`, and its subfolders to `folders`
    /// when recursive.
    fn read(
        &self,
        dir: &str,
        files: &mut Vec<String>,
        folders: &mut Vec<String>,
    ) -> Result<(), JobError> {
        let path = self.root.join(self.folder);
        let shown = path.to_string_lossy().into_owned();
        let entries =
            fs::read_dir(&path).map_err(|error| io_error("cannot list", &shown, &error))?;

        for entry in entries {
            let entry = entry.map_err(|error| io_error("cannot list", &shown, &error))?;
            let name = entry.file_name().into_string().map_err(|name| {
                JobError::fatal(format!(
                    "cannot list `{dir}`: the name `{}` in `{shown}` is not UTF-8",
                    name.to_string_lossy()
                ))
            })?;
            let relative = if self.folder.is_empty() {
                name.clone()
            } else {
                format!("{}/{name}", self.folder)
            };

            let file_type = entry
                .file_type()
                .map_err(|error| io_error("cannot read the type of", &relative, &error))?;
            let full = self.root.join(&relative);
            if file_type.is_dir() {
                if self.recursive {
                    folders.push(relative);
                }
                continue;
            }
            let is_file = file_type.is_file() || (file_type.is_symlink() && full.is_file());
            let candidate = if self.recursive { &relative } else { &name };
            if is_file && self.pattern.matches(candidate) {
                files.push(full.to_string_lossy().into_owned());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use weft_plugin::testing::TestCall;

    use super::*;
    use weft_plugin::testing::Scratch;

    fn list(input: Value) -> Result<Vec<String>, JobError> {
        let output = TestCall::new().run(&ListFiles, input)?;
        Ok(serde_json::from_value(output["files"].clone()).unwrap())
    }

    fn books(test: &str) -> Scratch {
        let scratch = Scratch::new(test);
        scratch.write("books/b.txt", "b");
        scratch.write("books/a.txt", "a");
        scratch.write("books/C.md", "c");
        scratch.write("books/.hidden", "h");
        scratch.write("books/old/z.txt", "z");
        scratch.write("books/old/deeper/y.txt", "y");
        scratch.write("books/old/deeper/y.md", "y");
        scratch
    }

    #[test]
    fn list_files_lists_the_files_of_a_folder_sorted_in_byte_order() {
        let scratch = books("byte_order");
        let dir = scratch.join("books");

        let files = list(json!({ "dir": dir })).unwrap();

        let expected: Vec<String> = [".hidden", "C.md", "a.txt", "b.txt"]
            .iter()
            .map(|name| format!("{dir}/{name}"))
            .collect();
        assert_eq!(files, expected);
    }

    #[test]
    fn list_files_joins_a_relative_dir_with_each_name() {
        let scratch = books("relative");
        let cwd = std::env::current_dir().unwrap();
        let ups = "../".repeat(cwd.components().count() - 1);
        let relative = format!("{ups}{}", scratch.join("books").trim_start_matches('/'));

        let files = list(json!({ "dir": relative, "glob": "a.*" })).unwrap();

        assert_eq!(files, [format!("{relative}/a.txt")]);
    }

    #[test]
    fn list_files_matches_the_glob_against_the_name() {
        let scratch = books("glob_name");
        let dir = scratch.join("books");

        let files = list(json!({ "dir": dir, "glob": "*.txt" })).unwrap();

        assert_eq!(files, [format!("{dir}/a.txt"), format!("{dir}/b.txt")]);
    }

    #[test]
    fn list_files_matches_the_relative_path_when_recursive() {
        let scratch = books("recursive");
        let dir = scratch.join("books");

        let all_text = list(json!({ "dir": dir, "glob": "*.txt", "recursive": true })).unwrap();
        let old_only = list(json!({ "dir": dir, "glob": "old/*/*", "recursive": true })).unwrap();

        assert_eq!(
            all_text,
            [
                format!("{dir}/a.txt"),
                format!("{dir}/b.txt"),
                format!("{dir}/old/deeper/y.txt"),
                format!("{dir}/old/z.txt"),
            ]
        );
        assert_eq!(
            old_only,
            [
                format!("{dir}/old/deeper/y.md"),
                format!("{dir}/old/deeper/y.txt")
            ]
        );
    }

    #[test]
    fn list_files_lists_only_files_not_folders() {
        let scratch = books("only_files");
        let dir = scratch.join("books");

        let files = list(json!({ "dir": dir, "glob": "old*" })).unwrap();

        assert!(files.is_empty(), "{files:?}");
    }

    #[test]
    fn list_files_counts_links_to_files_but_does_not_follow_links_to_folders() {
        let scratch = books("links");
        let dir = scratch.join("books");
        std::os::unix::fs::symlink(scratch.join("books/a.txt"), scratch.join("books/link.txt"))
            .unwrap();
        std::os::unix::fs::symlink(scratch.join("books/old"), scratch.join("books/loop")).unwrap();
        std::os::unix::fs::symlink(scratch.join("gone"), scratch.join("books/dangling")).unwrap();

        let files = list(json!({ "dir": dir, "glob": "l*", "recursive": true })).unwrap();

        assert_eq!(files, [format!("{dir}/link.txt")]);
    }

    #[test]
    fn list_files_refuses_a_missing_folder_by_name() {
        let scratch = Scratch::new("missing");
        let dir = scratch.join("nowhere");

        let error = list(json!({ "dir": dir })).unwrap_err();

        assert_eq!(
            error.message(),
            format!("cannot list `{dir}`: it does not exist")
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn list_files_refuses_a_file_as_the_folder() {
        let scratch = books("file_as_dir");
        let file = scratch.join("books/a.txt");

        let error = list(json!({ "dir": file })).unwrap_err();

        assert_eq!(
            error.message(),
            format!("cannot list `{file}`: it is not a directory")
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn list_files_refuses_an_invalid_glob() {
        let scratch = books("bad_glob");

        let error = list(json!({ "dir": scratch.join("books"), "glob": "[a" })).unwrap_err();

        assert!(
            error.message().starts_with("invalid `glob` `[a`: "),
            "{error}"
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn list_files_stops_when_cancelled() {
        let scratch = books("cancelled");

        let error = TestCall::new()
            .cancelled()
            .run(&ListFiles, json!({ "dir": scratch.join("books") }))
            .unwrap_err();

        assert!(error.is_cancelled());
    }
}
