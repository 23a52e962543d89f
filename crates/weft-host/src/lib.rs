//! Finds, loads and checks weft plugins, and calls their jobs safely.
//!
//! ```no_run
//! use weft_host::{Catalog, SearchPath};
//!
//! let catalog = Catalog::discover(&SearchPath::standard(&[]));
//! for plugin in catalog.plugins.values() {
//!     println!("{} {}: {} jobs", plugin.name, plugin.version, plugin.jobs.len());
//! }
//! ```
//!
//! All the unsafe code that talks to plugins lives here and in the SDK; the rest of the
//! engine sees safe [`Job`] handles that take and return JSON.

mod call;
mod cancel;
mod check;
mod discover;
mod json;
mod plugin;

pub use call::{CallOptions, Failure, FailureKind, LogLevel, MAX_OUTPUT_BYTES};
pub use cancel::CancelFlag;
pub use check::{check, search_for};
pub use discover::{Catalog, Conflict, Misplaced, PATH_VARIABLE, Rejected, SearchPath};
pub use json::JsonText;
pub use plugin::{InputProblem, Job, LoadError, Plugin, is_plugin_name, load};
