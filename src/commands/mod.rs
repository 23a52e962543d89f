//! The commands of `weft`, one module each.

pub mod graph;
pub mod plugins;
pub mod run;
pub mod schema;
pub mod validate;
