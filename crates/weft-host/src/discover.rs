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

use std::collections::{HashMap, HashSet};
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
        let mut found = Found {
            pins: search
                .pins
                .iter()
                .map(|(name, path)| (name.as_str(), canonical(path)))
                .collect(),
            listed: HashMap::new(),
        };

        for file in &search.files {
            catalog.consider(file, &mut found, &mut seen);
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
                catalog.consider(&file, &mut found, &mut seen);
            }
        }
        for (name, path) in &search.pins {
            if let Some(problem) = catalog.pin_problem(name, path, &found) {
                catalog.misplaced.push(Misplaced {
                    name: name.clone(),
                    path: path.clone(),
                    problem,
                });
            }
        }
        catalog
    }

    fn consider(&mut self, path: &Path, found: &mut Found<'_>, seen: &mut HashSet<PathBuf>) {
        if !seen.insert(canonical(path)) {
            return;
        }
        let plugin = match plugin::load(path) {
            Ok(plugin) => plugin,
            Err(error) => {
                self.rejected.push(Rejected {
                    path: path.to_owned(),
                    error,
                });
                return;
            }
        };
        let Some(first) = self.plugins.get(&plugin.name) else {
            found.listed.insert(plugin.name.clone(), path.to_owned());
            self.plugins.insert(plugin.name.clone(), plugin);
            return;
        };
        match found.place(&plugin.name) {
            // A copy away from where the workflow pins the plugin is not a conflict: it is
            // simply not the one asked for.
            Some(place) if !is_within(path, place) => {}
            // The pinned copy, found after a copy elsewhere (in a folder pinned for another
            // plugin, say), takes that copy's place.
            Some(place) if !is_within(&found.listed[&plugin.name], place) => {
                found.listed.insert(plugin.name.clone(), path.to_owned());
                self.plugins.insert(plugin.name.clone(), plugin);
            }
            _ => self.conflicts.push(Conflict {
                name: plugin.name.clone(),
                first: first.path.clone(),
                second: plugin.path.clone(),
            }),
        }
    }

    /// Why plugin `name` is not the one at `place`, if it is not.
    fn pin_problem(&self, name: &str, place: &Path, found: &Found<'_>) -> Option<String> {
        if !place.exists() {
            return Some(format!("nothing is at `{}`", place.display()));
        }
        let place_canonical = canonical(place);
        if found
            .listed
            .get(name)
            .is_some_and(|listed| is_within(listed, &place_canonical))
        {
            return None;
        }
        if place.is_dir() {
            let mut problem = format!(
                "no library in `{}` declares the plugin `{name}`",
                place.display()
            );
            for rejected in &self.rejected {
                if is_within(&rejected.path, &place_canonical) {
                    problem.push_str(&format!("; {}", rejected.error));
                }
            }
            return Some(problem);
        }
        // The load is cached: this reads what the search found of the file.
        Some(match plugin::load(place) {
            Ok(plugin) => format!(
                "`{}` declares the plugin `{}`, not `{name}`",
                place.display(),
                plugin.name
            ),
            Err(error) => format!("`{}` is not a usable plugin: {error}", place.display()),
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

/// What a search has found so far, beside the catalog: the places pinned by name, and where
/// each plugin kept was listed.
struct Found<'s> {
    /// Each pinned name with its place, canonical.
    pins: Vec<(&'s str, PathBuf)>,
    /// The path each plugin kept was found at, as listed (a link is not followed), so that a
    /// link in a pinned folder counts as being in that folder.
    listed: HashMap<String, PathBuf>,
}

impl Found<'_> {
    /// Where the workflow pins plugin `name`, if it does.
    fn place(&self, name: &str) -> Option<&Path> {
        self.pins
            .iter()
            .find(|(pinned, _)| *pinned == name)
            .map(|(_, place)| place.as_path())
    }
}

/// Whether the library listed at `file` is the canonical `place` or sits in that folder.
fn is_within(file: &Path, place: &Path) -> bool {
    canonical(file) == place
        || file
            .parent()
            .is_some_and(|folder| canonical(folder) == place)
}

/// Whether the file name has the platform's shared-library extension.
fn is_library(path: &Path) -> bool {
    path.extension()
        .is_some_and(|extension| extension == std::env::consts::DLL_EXTENSION)
}
