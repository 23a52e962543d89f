//! The weft workflow format: its types, loading from YAML with positions, validation,
//! expressions and the JSON Schema.
//!
//! ```no_run
//! let document = weft_spec::load(std::path::Path::new("workflows/wordcount.yaml"), "wordcount.yaml")
//!     .expect("the file should read and parse");
//! let checked = weft_spec::check(&document);
//! for diagnostic in document.diagnostics.iter().chain(&checked.diagnostics) {
//!     eprint!("{}", diagnostic.render(Some(&document.source)));
//! }
//! ```
//!
//! Nothing here knows of plugins or threads: the spec is the file, checked alone.

mod check;
pub mod diagnostic;
mod duration;
pub mod expr;
pub mod inputs;
mod load;
mod model;
mod schema;
pub mod yaml;

pub use check::{Checked, check};
pub use diagnostic::{Diagnostic, Kind};
pub use duration::{Duration, ParseDurationError};
pub use load::{Document, load, load_str};
pub use model::*;
pub use schema::schema;

/// The pattern every stage id matches.
pub const STAGE_ID_PATTERN: &str = "^[a-z][a-z0-9_]*$";

/// Whether `name` matches `^[a-z][a-z0-9_]*$`, the form of stage ids and job names.
pub fn is_identifier(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
