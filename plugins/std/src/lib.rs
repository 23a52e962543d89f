//! The `std` plugin: the small jobs that workflows everywhere lean on.
//!
//! | job | input | output |
//! | --- | --- | --- |
//! | `std.echo` | `{value}` | the value |
//! | `std.log` | `{message, level?: "info"}` | `null`; the message goes to the run's log |
//! | `std.sum` | `{values: [number]}` | their sum, an integer when all are integers |
//! | `std.concat` | `{values: [array]}` or `{values: [string]}` | one array, or one string |
//! | `std.range` | `{end, start?: 0, step?: 1}` | the integers from `start` up to `end`, excluded |
//! | `std.sleep` | `{duration: "250ms", value?}` | `value` (or `null`) after the duration |
//! | `std.fail` | `{message, until_attempt?}` | an error, on every attempt or before `until_attempt` |
//! | `std.pick` | `{value, path: "a.0.b"}` | the part of `value` at `path` |
//! | `std.merge` | `{values: [object]}` | one object; later keys win |
//! | `std.top` | `{counts: [object], limit?: 10}` | `[{key, count}]`: counts added up by key, largest first |
//!
//! The input and output tables above are a contract that workflows rely on: names, fields
//! and defaults only ever grow.

mod control;
mod numbers;
mod values;

pub use control::{Fail, Log, LogLevel, Sleep};
pub use numbers::{Range, Sum, Top};
pub use values::{Concat, Echo, Merge, Pick};

weft_plugin::export_plugin!(
    name: "std",
    jobs: [Echo, Log, Sum, Concat, Range, Sleep, Fail, Pick, Merge, Top],
);
