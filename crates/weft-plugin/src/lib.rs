//! The SDK for weft job plugins.
//!
//! A plugin is a crate built as a `cdylib` that implements [`Job`] for a few types and
//! exports them with [`export_plugin!`]:
//!
//! ```
//! use weft_plugin::{Job, JobContext, JobError, JsonSchema};
//! use serde::{Deserialize, Serialize};
//!
//! /// Greets someone.
//! #[derive(Default)]
//! pub struct Greet;
//!
//! /// Whom to greet.
//! #[derive(Deserialize, JsonSchema)]
//! pub struct Input {
//!     /// The name to greet.
//!     name: String,
//! }
//!
//! impl Job for Greet {
//!     const NAME: &'static str = "greet";
//!     const DESCRIPTION: &'static str = "Says hello to `name`.";
//!     type Input = Input;
//!     type Output = String;
//!
//!     fn run(&self, context: &JobContext<'_>, input: Input) -> Result<String, JobError> {
//!         context.check()?;
//!         Ok(format!("hello, {}", input.name))
//!     }
//! }
//!
//! weft_plugin::export_plugin!(name: "hello", jobs: [Greet]);
//! ```
//!
//! The SDK does the unsafe part: it builds the ABI descriptor, turns JSON into the job's
//! input and its output back into JSON, catches panics (a panic becomes the job's error, with
//! its message), and carries logs (the [`log`] crate's macros, or [`JobContext::info`] and
//! friends) to the engine, tagged with the run, stage and item.
//!
//! Jobs are called from several threads at once, so a job type is `Send + Sync`; keep state
//! behind a lock or an atomic.

#[cfg(panic = "abort")]
compile_error!(
    "weft plugins must be built with `panic = \"unwind\"`: the SDK turns a job's panic into \
     its error, and with `panic = \"abort\"` one panic would end the whole engine"
);

mod context;
mod error;
#[doc(hidden)]
pub mod export;
pub mod testing;

pub use context::{JobContext, Level};
pub use error::JobError;
pub use schemars::{self, JsonSchema};
pub use serde;
pub use serde_json;
pub use weft_plugin_abi as abi;

/// The version of this SDK, recorded in every plugin's descriptor.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A job that a plugin exports.
///
/// The engine calls [`Job::run`] with the job's input decoded from JSON; the output is
/// encoded back to JSON. The input and output types' JSON Schemas (with their doc comments)
/// are what `weft plugins show` prints and what `weft validate` checks inputs against.
pub trait Job: Send + Sync + 'static {
    /// The job's name, after the dot in `plugin.job`: lowercase letters, digits and `_`.
    const NAME: &'static str;

    /// One line saying what the job does.
    const DESCRIPTION: &'static str;

    /// Whether the job mostly waits (on a process, a socket, a timer) rather than computes:
    /// waiting jobs run on a lane of the pool that grows on demand.
    const WAITS: bool = false;

    /// The job's input.
    type Input: serde::de::DeserializeOwned + JsonSchema;

    /// The job's output.
    type Output: serde::Serialize + JsonSchema;

    /// Runs the job once.
    ///
    /// Long jobs check [`JobContext::is_cancelled`] (or `context.check()?`) now and then and
    /// wait with [`JobContext::sleep`], so that a cancelled run stops at once.
    fn run(&self, context: &JobContext<'_>, input: Self::Input) -> Result<Self::Output, JobError>;
}

/// Exports a plugin: its name and its jobs (values of types that implement [`Job`]).
///
/// ```ignore
/// weft_plugin::export_plugin!(name: "text", jobs: [ListFiles, Read, CountWords]);
/// ```
///
/// The plugin's version is the crate's version. This defines the entry symbol that the
/// engine looks for; a library exports one plugin.
#[macro_export]
macro_rules! export_plugin {
    (name: $name:expr, jobs: [$($job:expr),* $(,)?] $(,)?) => {
        /// The plugin's entry point, which the engine calls once.
        #[unsafe(no_mangle)]
        pub extern "C" fn weft_plugin_v1() -> *const $crate::abi::PluginDescriptor {
            static DESCRIPTOR: $crate::export::DescriptorCell = $crate::export::DescriptorCell::new();
            DESCRIPTOR.get_or_init(|| {
                $crate::export::describe(
                    $name,
                    env!("CARGO_PKG_VERSION"),
                    vec![$($crate::export::job($job)),*],
                )
            })
        }
    };
}
