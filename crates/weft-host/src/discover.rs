//! Finding plugins: which folders and files are searched, in which order, and what was found.
//!
//! The places, in order: the workflow's `plugins:` entries, the `--plugin-path` folders, the
//! folders of `WEFT_PLUGIN_PATH`, and the folder holding the `weft` executable (so that a
//! `cargo build` of the workspace finds its own plugins). Folders are read one level deep;
//! files count by their canonical path, so a folder named twice is read once.
//!
//! A workflow's `plugins: {name: {path}}` pins where `name` is: the file there (or the one
//! in the folder there that declares `name`) is the plugin, whatever the other places hold,
//! and a path that does not lead to it is an error rather than a silent fallback.

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
    /// Plugin names whose place a workflow gives, with that place (a file or a folder).
    pub pins: Vec<(String, PathBuf)>,
}

impl SearchPath {
    /// The standard search: `flag_folders` (from `--plugin-path`), then `WEFT_PLUGIN_PATH`,
    /// then the executable's folder.
    pub fn standard(flag_folders: &[PathBuf]) -> Self {
        let mut search = Self {
            folders: flag_folders.to_vec(),
            ..Self::default()
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

    /// Pins plugin `name` to `path` (a library file, or a folder holding it), from a
    /// workflow's `plugins:`; the place is searched first.
    pub fn pin(&mut self, name: &str, path: PathBuf) {
        if path.is_dir() {
            self.folders.insert(0, path.clone());
        } else {
            self.files.push(path.clone());
        }
        self.pins.push((name.to_owned(), path));
    }
}

/// A pinned plugin that is not where its workflow says.
#[derive(Clone, Debug)]
pub struct Misplaced {
    /// The plugin name.
    pub name: String,
    /// The place the workflow gives.
    pub path: PathBuf,
    /// What is there instead.
    pub problem: String,
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
    /// Pinned plugins not found where the workflow says.
    pub misplaced: Vec<Misplaced>,
}

impl Catalog {
    /// Searches every place of `search`.
    pub fn discover(search: &SearchPath) -> Self {
        let mut catalog = Self::default();
        let mut seen = HashSet::new();
        let pins: Vec<(&str, PathBuf)> = search
            .pins
            .iter()
            .map(|(name, path)| (name.as_str(), canonical(path)))
            .collect();

        for file in &search.files {
            catalog.consider(file, &pins, &mut seen);
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
                catalog.consider(&file, &pins, &mut seen);
            }
        }
        for (name, path) in &search.pins {
            if let Some(problem) = catalog.pin_problem(name, path) {
                catalog.misplaced.push(Misplaced {
                    name: name.clone(),
                    path: path.clone(),
                    problem,
                });
            }
        }
        catalog
    }

    fn consider(&mut self, path: &Path, pins: &[(&str, PathBuf)], seen: &mut HashSet<PathBuf>) {
        let canonical = canonical(path);
        if !seen.insert(canonical.clone()) {
            return;
        }
        match plugin::load(path) {
            Ok(plugin) => match self.plugins.get(&plugin.name) {
                // A pinned plugin is searched first: a copy found elsewhere afterwards is
                // not a conflict, it is simply not the one the workflow asked for.
                Some(_)
                    if pins.iter().any(|(name, place)| {
                        *name == plugin.name && !is_within(&canonical, place)
                    }) => {}
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

    /// Why plugin `name` is not the one at `place`, if it is not.
    fn pin_problem(&self, name: &str, place: &Path) -> Option<String> {
        if !place.exists() {
            return Some(format!("nothing is at `{}`", place.display()));
        }
        let place_canonical = canonical(place);
        let found = self.plugins.get(name);
        if found.is_some_and(|plugin| is_within(&canonical(&plugin.path), &place_canonical)) {
            return None;
        }
        if place.is_dir() {
            return Some(format!(
                "no library in `{}` declares the plugin `{name}`",
                place.display()
            ));
        }
        if let Some(rejected) = self
            .rejected
            .iter()
            .find(|rejected| canonical(&rejected.path) == place_canonical)
        {
            return Some(format!(
                "`{}` is not a usable plugin: {}",
                place.display(),
                rejected.error
            ));
        }
        let declared = self
            .plugins
            .values()
            .find(|plugin| canonical(&plugin.path) == place_canonical)
            .map(|plugin| plugin.name.clone());
        Some(match declared {
            Some(other) => format!(
                "`{}` declares the plugin `{other}`, not `{name}`",
                place.display()
            ),
            None => format!("`{}` does not declare the plugin `{name}`", place.display()),
        })
    }

    /// The conflict over `name`, if two files declare it.
    pub fn conflict(&self, name: &str) -> Option<&Conflict> {
        self.conflicts.iter().find(|conflict| conflict.name == name)
    }
}

/// The canonical form of `path`, or `path` itself when it cannot be resolved.
fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_owned())
}

/// Whether the canonical `file` is the canonical `place` or directly inside it.
fn is_within(file: &Path, place: &Path) -> bool {
    file == place || file.parent() == Some(place)
}

/// Whether the file name has the platform's shared-library extension.
fn is_library(path: &Path) -> bool {
    path.extension()
        .is_some_and(|extension| extension == std::env::consts::DLL_EXTENSION)
}
