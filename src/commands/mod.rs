//! The commands of `weft`, one module each.

pub mod graph;
pub mod plugins;
pub mod schema;
pub mod validate;
