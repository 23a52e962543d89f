//! Finding plugins: which folders and files are searched, in which order, and what was found.
//!
//! The places, in order: the workflow's `plugins:` entries, the `--plugin-path` folders, the
//! folders of `WEFT_PLUGIN_PATH`, and the folder holding the `weft` executable (so that a
//! `cargo build` of the workspace finds its own plugins). Folders are read one level deep;
//! files count by their canonical path, so a folder named twice is read once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use crate::plugin::{self, LoadError, Plugin};

/// The environment variable that lists extra plugin folders, separated like `PATH`.
pub const PATH_VARIABLE: &str = "WEFT_PLUGIN_PATH";

/// Where plugins are looked for.
#[derive(Clone, Debug, Default)]
pub struct SearchPath {
    /// Library files named directly (a workflow's `plugins: {name: {path: file}}`).
    pub files: Vec<PathBuf>,
    /// Folders, in the order they are searched.
    pub folders: Vec<PathBuf>,
}

impl SearchPath {
    /// The standard search: `flag_folders` (from `--plugin-path`), then `WEFT_PLUGIN_PATH`,
    /// then the executable's folder.
    pub fn standard(flag_folders: &[PathBuf]) -> Self {
        let mut search = Self {
            files: Vec::new(),
            folders: flag_folders.to_vec(),
        };
        if let Some(paths) = std::env::var_os(PATH_VARIABLE) {
            search
                .folders
                .extend(std::env::split_paths(&paths).filter(|path| !path.as_os_str().is_empty()));
        }
        if let Some(folder) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_owned))
        {
            search.folders.push(folder);
        }
        search
    }

    /// Adds a workflow's `plugins:` path (a library file or a folder), searched first.
    pub fn add_first(&mut self, path: PathBuf) {
        if path.is_dir() {
            self.folders.insert(0, path);
        } else {
            self.files.push(path);
        }
    }
}

/// A library file that is not a usable plugin, and why.
#[derive(Clone, Debug)]
pub struct Rejected {
    /// The file.
    pub path: PathBuf,
    /// Why it is not usable.
    pub error: LoadError,
}

/// Two files that declare the same plugin name.
#[derive(Clone, Debug)]
pub struct Conflict {
    /// The plugin name.
    pub name: String,
    /// The file found first, which is used.
    pub first: PathBuf,
    /// The other file.
    pub second: PathBuf,
}

/// What a search found.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The plugins, by name, in the order they were found.
    pub plugins: IndexMap<String, Arc<Plugin>>,
    /// Library files that are not usable plugins.
    pub rejected: Vec<Rejected>,
    /// Plugin names declared by more than one file.
    pub conflicts: Vec<Conflict>,
    /// The folders searched, as given.
    pub searched: Vec<PathBuf>,
}

impl Catalog {
    /// Searches every place of `search`.
    pub fn discover(search: &SearchPath) -> Self {
        let mut catalog = Self::default();
        let mut seen = HashSet::new();

        for file in &search.files {
            catalog.consider(file, &mut seen);
        }
        for folder in &search.folders {
            catalog.searched.push(folder.clone());
            let Ok(entries) = std::fs::read_dir(folder) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| is_library(path) && path.is_file())
                .collect();
            files.sort();
            for file in files {
                catalog.consider(&file, &mut seen);
            }
        }
        catalog
    }

    fn consider(&mut self, path: &Path, seen: &mut HashSet<PathBuf>) {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        if !seen.insert(canonical) {
            return;
        }
        match plugin::load(path) {
            Ok(plugin) => match self.plugins.get(&plugin.name) {
                Some(first) => self.conflicts.push(Conflict {
                    name: plugin.name.clone(),
                    first: first.path.clone(),
                    second: plugin.path.clone(),
                }),
                None => {
                    self.plugins.insert(plugin.name.clone(), plugin);
                }
            },
            Err(error) => self.rejected.push(Rejected {
                path: path.to_owned(),
                error,
            }),
        }
    }

    /// The conflict over `name`, if two files declare it.
    pub fn conflict(&self, name: &str) -> Option<&Conflict> {
        self.conflicts.iter().find(|conflict| conflict.name == name)
    }
}

/// Whether the file name has the platform's shared-library extension.
fn is_library(path: &Path) -> bool {
    path.extension()
        .is_some_and(|extension| extension == std::env::consts::DLL_EXTENSION)
}
