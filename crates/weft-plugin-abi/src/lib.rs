//! The C ABI between weft and its job plugins.
//!
//! A plugin is a shared library that exports one function, [`ENTRY_SYMBOL`], returning a
//! pointer to a static [`PluginDescriptor`]. The descriptor lists the plugin's jobs; the
//! engine calls a job through its [`JobDescriptor::call`] pointer with a [`CallContext`] and
//! the job's input as UTF-8 JSON bytes. Nothing of Rust's own ABI crosses the boundary: only
//! `repr(C)` structs, integers, byte slices and `extern "C"` function pointers.
//!
//! # Rules that keep the ABI stable
//!
//! - Structs only ever grow at the end. Every struct that may grow starts with (or carries)
//!   its own size, and a reader reads a field only where that size covers it.
//! - The host checks [`PluginDescriptor::magic`], then [`PluginDescriptor::abi_major`]
//!   (equal to [`ABI_MAJOR`]) and [`PluginDescriptor::abi_minor`] (not newer than
//!   [`ABI_MINOR`]) before it reads anything else.
//! - Memory never changes owner. Inputs are borrowed for the duration of a call; outputs,
//!   errors and log lines go back through host callbacks that copy the bytes before they
//!   return. Two allocators never meet.
//! - Status codes are plain integers, never a Rust enum, so an unknown value is not
//!   undefined behaviour.
//!
//! This crate has no dependencies, so that it can stay the same for years.

#![no_std]

use core::ffi::c_void;
use core::marker::PhantomData;
use core::sync::atomic::AtomicU32;

/// The first field of every descriptor: `WEFTPLUG` in ASCII, little-endian.
pub const MAGIC: u64 = u64::from_le_bytes(*b"WEFTPLUG");

/// The ABI's major version. A host loads only plugins of its own major version.
pub const ABI_MAJOR: u32 = 1;

/// The ABI's minor version. A host loads plugins whose minor version is not newer than its own.
pub const ABI_MINOR: u32 = 0;

/// The name of the exported entry function, which carries the major version, NUL-terminated.
pub const ENTRY_SYMBOL: &[u8] = b"weft_plugin_v1\0";

/// The type of the entry function: returns the plugin's descriptor, valid for the life of the
/// process.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginDescriptor;

/// A borrowed run of UTF-8 bytes.
///
/// # Invariants
///
/// `ptr` points to `len` initialised bytes (or is dangling when `len` is 0) that stay valid
/// for as long as the struct that holds the `Bytes` says: the life of the process in a
/// descriptor, the call in a [`CallContext`] or a callback.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Bytes<'a> {
    /// The first byte.
    pub ptr: *const u8,
    /// How many bytes.
    pub len: usize,
    /// The borrow the bytes come from.
    pub marker: PhantomData<&'a [u8]>,
}

impl<'a> Bytes<'a> {
    /// Borrows a byte slice.
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
            marker: PhantomData,
        }
    }

    /// Borrows a string's bytes.
    pub const fn from_str(text: &'a str) -> Self {
        Self::new(text.as_bytes())
    }

    /// The bytes, as a slice.
    ///
    /// # Safety
    ///
    /// The [`Bytes`] invariants must hold: `ptr` points to `len` readable bytes that live for
    /// `'a`.
    pub unsafe fn as_slice(&self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: the caller promises that `ptr` points to `len` bytes valid for `'a`.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// What a plugin declares about itself.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDescriptor {
    /// Always [`MAGIC`].
    pub magic: u64,
    /// The plugin's [`ABI_MAJOR`] when it was built.
    pub abi_major: u32,
    /// The plugin's [`ABI_MINOR`] when it was built.
    pub abi_minor: u32,
    /// `size_of::<PluginDescriptor>()` when the plugin was built.
    pub size: usize,
    /// The plugin's name, which workflows write before the dot in `plugin.job`.
    pub name: Bytes<'static>,
    /// The plugin's version (semver).
    pub version: Bytes<'static>,
    /// The version of the SDK the plugin was built with.
    pub sdk_version: Bytes<'static>,
    /// The jobs: `job_count` descriptors of `job_size` bytes each.
    pub jobs: *const JobDescriptor,
    /// How many jobs.
    pub job_count: usize,
    /// `size_of::<JobDescriptor>()` when the plugin was built: the stride of `jobs`.
    pub job_size: usize,
}

/// One job of a plugin.
#[repr(C)]
#[derive(Debug)]
pub struct JobDescriptor {
    /// The job's name, which workflows write after the dot in `plugin.job`.
    pub name: Bytes<'static>,
    /// One line saying what the job does.
    pub description: Bytes<'static>,
    /// The JSON Schema of the job's input, as JSON text.
    pub input_schema: Bytes<'static>,
    /// The JSON Schema of the job's output, as JSON text.
    pub output_schema: Bytes<'static>,
    /// `JOB_FLAG_*` bits.
    pub flags: u32,
    /// Calls the job.
    pub call: JobFn,
    /// Passed back as the first argument of `call`.
    pub data: *const c_void,
}

/// The job mostly waits (on a process, a socket, a timer): the engine runs it on the pool's
/// waiting lane, which grows on demand, rather than on a compute thread.
pub const JOB_FLAG_WAITS: u32 = 1;

/// Calls a job: `data` is [`JobDescriptor::data`], `context` the call's context, `input` the
/// job's input as UTF-8 JSON. The job reports its output or error through
/// [`CallContext::emit`] before it returns, and returns a `STATUS_*` code.
pub type JobFn = unsafe extern "C" fn(
    data: *const c_void,
    context: *const CallContext<'_>,
    input: Bytes<'_>,
) -> i32;

/// The job succeeded; it emitted its output (as [`EMIT_OUTPUT`]).
pub const STATUS_OK: i32 = 0;
/// The job failed; it emitted an error (as [`EMIT_ERROR`]), JSON `{message, retryable, details}`.
pub const STATUS_ERROR: i32 = 1;
/// The job saw the cancellation and stopped; it may have emitted an error.
pub const STATUS_CANCELLED: i32 = 2;
/// The job panicked; the SDK emitted an error with the panic's message.
pub const STATUS_PANICKED: i32 = 3;
/// The input did not match the job's input type; the SDK emitted an error saying why.
pub const STATUS_BAD_INPUT: i32 = 4;

/// [`CallContext::emit`]'s kind for the job's output, as JSON.
pub const EMIT_OUTPUT: u32 = 0;
/// [`CallContext::emit`]'s kind for the job's error, as JSON `{message, retryable, details}`.
pub const EMIT_ERROR: u32 = 1;

/// Log levels of [`CallContext::log`].
pub const LOG_ERROR: u32 = 1;
/// Warning.
pub const LOG_WARN: u32 = 2;
/// Information.
pub const LOG_INFO: u32 = 3;
/// Detail for debugging.
pub const LOG_DEBUG: u32 = 4;
/// Fine detail.
pub const LOG_TRACE: u32 = 5;

/// No deadline, in [`CallContext::deadline_ns`].
pub const NO_DEADLINE: u64 = u64::MAX;

/// No item index, in [`CallContext::index`]: the stage runs a single job.
pub const NO_INDEX: u64 = u64::MAX;

/// What the host gives a job for one call. Valid for the duration of the call only.
#[repr(C)]
#[derive(Debug)]
pub struct CallContext<'a> {
    /// `size_of::<CallContext>()` in the host: fields past it are absent.
    pub size: usize,
    /// Non-zero once the job is cancelled. The host sets it; the job reads it with
    /// `Ordering::Relaxed` or stronger.
    pub cancel: *const AtomicU32,
    /// Nanoseconds from the start of the call to the job's deadline, or [`NO_DEADLINE`].
    pub deadline_ns: u64,
    /// Nanoseconds a cancelled job has to stop before the engine abandons it: a job that
    /// stops a child process asks it politely first, then forcefully within this time.
    pub grace_ns: u64,
    /// The attempt, from 1.
    pub attempt: u32,
    /// The run's id.
    pub run_id: Bytes<'a>,
    /// The stage's id.
    pub stage_id: Bytes<'a>,
    /// The item's index in a fan-out, or [`NO_INDEX`].
    pub index: u64,
    /// Passed back as the first argument of every callback.
    pub host: *const c_void,
    /// Waits up to `timeout_ns` nanoseconds, returning early when the job is cancelled.
    /// Returns 1 when cancelled, 0 when the time passed.
    pub wait: unsafe extern "C" fn(host: *const c_void, timeout_ns: u64) -> i32,
    /// Hands the host the job's output or error (`EMIT_*`), which the host copies.
    pub emit: unsafe extern "C" fn(host: *const c_void, kind: u32, bytes: Bytes<'_>),
    /// A log line at a `LOG_*` level, which the host copies.
    pub log: unsafe extern "C" fn(host: *const c_void, level: u32, message: Bytes<'_>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_spells_weftplug() {
        assert_eq!(&MAGIC.to_le_bytes(), b"WEFTPLUG");
    }

    #[test]
    fn the_entry_symbol_carries_the_major_version() {
        let [.., version, nul] = ENTRY_SYMBOL else {
            panic!("the symbol is too short");
        };
        assert_eq!((*version, *nul), (b'0' + ABI_MAJOR as u8, 0));
    }

    #[test]
    fn bytes_round_trip() {
        let text = "héllo";
        let bytes = Bytes::from_str(text);
        // SAFETY: `bytes` borrows `text`, which outlives this use.
        assert_eq!(unsafe { bytes.as_slice() }, text.as_bytes());
    }
}
