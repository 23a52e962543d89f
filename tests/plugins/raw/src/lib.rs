//! A plugin written against the raw ABI, without the SDK, whose jobs break the ABI's rules:
//! output that is not UTF-8, output that is not JSON, success without output, an unknown
//! status. Built with the `wrong-abi` or `wrong-magic` feature, its descriptor is one the host
//! must refuse.

use std::ffi::c_void;

use weft_plugin_abi as abi;

const EMPTY_SCHEMA: &str = "true";

/// Hands `bytes` back as the output and returns `status`.
///
/// # Safety
///
/// `context` is the host's live context.
unsafe fn answer(context: *const abi::CallContext<'_>, bytes: &[u8], status: i32) -> i32 {
    // SAFETY: the host's context and callbacks are valid during the call.
    unsafe {
        let context = &*context;
        (context.emit)(context.host, abi::EMIT_OUTPUT, abi::Bytes::new(bytes));
    }
    status
}

unsafe extern "C" fn invalid_utf8(_: *const c_void, context: *const abi::CallContext<'_>, _: abi::Bytes<'_>) -> i32 {
    // SAFETY: called by the host with its live context.
    unsafe { answer(context, b"\"\xff\xfe\"", abi::STATUS_OK) }
}

unsafe extern "C" fn invalid_json(_: *const c_void, context: *const abi::CallContext<'_>, _: abi::Bytes<'_>) -> i32 {
    // SAFETY: called by the host with its live context.
    unsafe { answer(context, b"{not json", abi::STATUS_OK) }
}

unsafe extern "C" fn no_output(_: *const c_void, _: *const abi::CallContext<'_>, _: abi::Bytes<'_>) -> i32 {
    abi::STATUS_OK
}

unsafe extern "C" fn unknown_status(_: *const c_void, _: *const abi::CallContext<'_>, _: abi::Bytes<'_>) -> i32 {
    77
}

macro_rules! job {
    ($name:literal, $call:ident) => {
        abi::JobDescriptor {
            name: abi::Bytes::from_str($name),
            description: abi::Bytes::from_str("Breaks a rule of the ABI."),
            input_schema: abi::Bytes::from_str(EMPTY_SCHEMA),
            output_schema: abi::Bytes::from_str(EMPTY_SCHEMA),
            flags: 0,
            call: $call,
            data: std::ptr::null(),
        }
    };
}

struct Descriptor(abi::PluginDescriptor);

// SAFETY: the descriptor is immutable and points only to static data.
unsafe impl Sync for Descriptor {}

struct Jobs([abi::JobDescriptor; 4]);

// SAFETY: as above.
unsafe impl Sync for Jobs {}

static JOBS: Jobs = Jobs([
    job!("invalid_utf8", invalid_utf8),
    job!("invalid_json", invalid_json),
    job!("no_output", no_output),
    job!("unknown_status", unknown_status),
]);

const MAGIC: u64 = if cfg!(feature = "wrong-magic") { 0x0123_4567_89ab_cdef } else { abi::MAGIC };
const MAJOR: u32 = if cfg!(feature = "wrong-abi") { abi::ABI_MAJOR + 1 } else { abi::ABI_MAJOR };

static DESCRIPTOR: Descriptor = Descriptor(abi::PluginDescriptor {
    magic: MAGIC,
    abi_major: MAJOR,
    abi_minor: 0,
    size: size_of::<abi::PluginDescriptor>(),
    name: abi::Bytes::from_str("raw"),
    version: abi::Bytes::from_str("0.1.0"),
    sdk_version: abi::Bytes::from_str("none"),
    jobs: JOBS.0.as_ptr(),
    job_count: JOBS.0.len(),
    job_size: size_of::<abi::JobDescriptor>(),
});

/// The entry point.
#[unsafe(no_mangle)]
pub extern "C" fn weft_plugin_v1() -> *const abi::PluginDescriptor {
    &DESCRIPTOR.0
}
