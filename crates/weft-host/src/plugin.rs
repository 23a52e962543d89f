//! Loading one plugin library: open it, check its descriptor, read its jobs.
//!
//! A library is opened with `RTLD_NOW | RTLD_LOCAL` (every symbol resolved at once, none
//! leaked into the global namespace), checked once, and kept for the life of the process:
//! unloading a Rust library with thread-local destructors is unsound, so it never happens.

use std::collections::HashMap;
use std::ffi::c_void;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use indexmap::IndexMap;
use jsonschema::error::ValidationErrorKind;
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use serde_json::Value;
use weft_plugin_abi as abi;

use crate::call::{self, CallOptions, Failure};
use crate::json::JsonText;

/// A loaded plugin and its jobs.
#[derive(Debug)]
pub struct Plugin {
    /// The name workflows write before the dot.
    pub name: String,
    /// The plugin's version.
    pub version: semver::Version,
    /// The SDK version it was built with.
    pub sdk_version: String,
    /// The ABI version it was built for, `(major, minor)`.
    pub abi: (u32, u32),
    /// The library file (canonical path).
    pub path: PathBuf,
    /// Its jobs, in the order the plugin lists them.
    pub jobs: IndexMap<String, Job>,
}

/// One job of a loaded plugin, callable from any thread.
pub struct Job {
    /// The job's name.
    pub name: String,
    /// One line saying what it does.
    pub description: String,
    /// The JSON Schema of its input.
    pub input_schema: Value,
    /// The JSON Schema of its output.
    pub output_schema: Value,
    /// Whether it mostly waits, and so runs on the pool's waiting lane.
    pub waits: bool,
    call: abi::JobFn,
    data: *const c_void,
    validator: OnceLock<Option<jsonschema::Validator>>,
}

// SAFETY: `data` is the plugin's own job value, leaked for the life of the process and only
// ever passed back to the plugin's `call`; the SDK requires jobs to be `Send + Sync`.
unsafe impl Send for Job {}
// SAFETY: as above.
unsafe impl Sync for Job {}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("waits", &self.waits)
            .finish_non_exhaustive()
    }
}

impl Job {
    /// Calls the job with `input` (UTF-8 JSON) and returns its output.
    ///
    /// A panic in the job, an error, output that is not JSON or is too large: each comes back
    /// as a [`Failure`]; the engine goes on. A job that crashes the process (a segfault, an
    /// abort) cannot be survived in-process.
    pub fn call(&self, input: &[u8], options: &CallOptions<'_>) -> Result<Value, Failure> {
        // SAFETY: `call` and `data` come from a descriptor that passed `check_descriptor`,
        // and the library is never unloaded.
        unsafe {
            call::call(self.call, self.data, input, options, |text| {
                serde_json::from_str(&text)
            })
        }
    }

    /// Like [`Job::call`], but the output is only checked to be JSON and kept as its text,
    /// with no tree built: the cheaper form when the output is mostly passed on.
    pub fn call_raw(&self, input: &[u8], options: &CallOptions<'_>) -> Result<JsonText, Failure> {
        // SAFETY: as in `call`.
        unsafe { call::call(self.call, self.data, input, options, JsonText::new) }
    }

    /// Checks `input` against the job's input schema.
    pub fn check_input(&self, input: &Value) -> Vec<InputProblem> {
        let validator = self
            .validator
            .get_or_init(|| jsonschema::draft7::new(&self.input_schema).ok());
        let Some(validator) = validator else {
            return Vec::new();
        };
        // Most inputs are valid, and asking only whether one is costs far less than listing
        // its errors.
        if validator.is_valid(input) {
            return Vec::new();
        }
        validator
            .iter_errors(input)
            .flat_map(|error| {
                let pointer = error.instance_path().to_string();
                match error.kind() {
                    ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
                        .iter()
                        .map(|key| InputProblem::UnknownKey {
                            pointer: pointer.clone(),
                            key: key.clone(),
                        })
                        .collect(),
                    ValidationErrorKind::Required { property } => vec![InputProblem::MissingKey {
                        pointer,
                        key: property.as_str().unwrap_or_default().to_owned(),
                    }],
                    _ => vec![InputProblem::Invalid {
                        pointer,
                        message: error.to_string(),
                    }],
                }
            })
            .collect()
    }

    /// The keys the input schema names at the top level, for suggestions.
    pub fn input_keys(&self) -> Vec<&str> {
        self.input_schema["properties"]
            .as_object()
            .map(|properties| properties.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

/// What is wrong with a job's input; `pointer` is the JSON pointer of the object or value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputProblem {
    /// An object has a key the schema does not allow.
    UnknownKey {
        /// The object.
        pointer: String,
        /// The key.
        key: String,
    },
    /// An object lacks a required key.
    MissingKey {
        /// The object.
        pointer: String,
        /// The key.
        key: String,
    },
    /// A value breaks the schema otherwise.
    Invalid {
        /// The value.
        pointer: String,
        /// What the validator said.
        message: String,
    },
}

/// Why a library is not a usable plugin.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The dynamic loader refused the file.
    #[error("cannot load `{path}`: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What the loader said.
        reason: String,
    },
    /// The library has no entry point.
    #[error("`{path}` is not a weft plugin: it exports no `weft_plugin_v{major}` function")]
    NoEntry {
        /// The file.
        path: PathBuf,
        /// The ABI major version looked for.
        major: u32,
    },
    /// The entry point returned nothing.
    #[error("`{path}` failed to describe itself: its entry point returned no descriptor")]
    NoDescriptor {
        /// The file.
        path: PathBuf,
    },
    /// The descriptor does not start with the magic number.
    #[error(
        "`{path}` is not a weft plugin: its descriptor starts with {found:#018x}, expected the magic number {expected:#018x}"
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// What it starts with.
        found: u64,
        /// [`abi::MAGIC`].
        expected: u64,
    },
    /// Built for another ABI major version.
    #[error(
        "`{path}` was built for plugin ABI {found}.{found_minor}, but this weft loads ABI {expected}.x; rebuild it against this weft's `weft-plugin`"
    )]
    AbiMajor {
        /// The file.
        path: PathBuf,
        /// Its major version.
        found: u32,
        /// Its minor version.
        found_minor: u32,
        /// [`abi::ABI_MAJOR`].
        expected: u32,
    },
    /// Built for a newer ABI minor version.
    #[error(
        "`{path}` was built for plugin ABI {major}.{found}, newer than this weft's {major}.{expected}; upgrade weft or rebuild the plugin"
    )]
    AbiMinor {
        /// The file.
        path: PathBuf,
        /// The major version.
        major: u32,
        /// Its minor version.
        found: u32,
        /// [`abi::ABI_MINOR`].
        expected: u32,
    },
    /// The descriptor breaks a rule.
    #[error("`{path}` has an invalid descriptor: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Which rule.
        reason: String,
    },
}

type Cache = Mutex<HashMap<PathBuf, Result<Arc<Plugin>, LoadError>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Cache::default)
}

/// Loads the plugin library at `path` (once per process; later calls return the same plugin
/// or the same error).
pub fn load(path: &Path) -> Result<Arc<Plugin>, LoadError> {
    let canonical = path.canonicalize().map_err(|error| LoadError::Open {
        path: path.to_owned(),
        reason: error.to_string().to_lowercase(),
    })?;

    let mut cache = cache().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(loaded) = cache.get(&canonical) {
        return loaded.clone();
    }
    let loaded = open(&canonical).map(Arc::new);
    cache.insert(canonical, loaded.clone());
    loaded
}

fn open(path: &Path) -> Result<Plugin, LoadError> {
    // SAFETY: loading a library runs its initialisers; weft loads only files the user put in
    // a plugin folder, and trusts them as it trusts its own binary.
    let library = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map_err(|error| {
        LoadError::Open {
            path: path.to_owned(),
            reason: loader_reason(&error),
        }
    })?;
    // Never unloaded: see the module's documentation.
    let library: &'static Library = Box::leak(Box::new(library));

    // SAFETY: the symbol, if present, is the SDK's entry function of type `EntryFn`.
    let entry = unsafe { library.get::<abi::EntryFn>(abi::ENTRY_SYMBOL) }.map_err(|_| {
        LoadError::NoEntry {
            path: path.to_owned(),
            major: abi::ABI_MAJOR,
        }
    })?;
    // SAFETY: the entry function takes no argument and returns a pointer to a static
    // descriptor, or null.
    let descriptor = unsafe { entry() };
    if descriptor.is_null() {
        return Err(LoadError::NoDescriptor {
            path: path.to_owned(),
        });
    }
    // SAFETY: a non-null descriptor pointer from the entry function points to a static
    // descriptor; `check_descriptor` reads the header fields before any other.
    unsafe { check_descriptor(path, descriptor) }
}

/// What the dynamic loader said: libloading's error names the call that failed, and its
/// source holds the loader's own message (`dlerror`), such as a missing dependency.
fn loader_reason(error: &libloading::Error) -> String {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}

/// Reads a descriptor: the magic and versions first, then the rest as far as its size says.
///
/// # Safety
///
/// `descriptor` points to memory that is readable for at least the header (magic, versions,
/// size), and for `size` bytes once the header checks pass.
unsafe fn check_descriptor(
    path: &Path,
    descriptor: *const abi::PluginDescriptor,
) -> Result<Plugin, LoadError> {
    let invalid = |reason: String| LoadError::Invalid {
        path: path.to_owned(),
        reason,
    };

    // SAFETY: the caller promises the header is readable; read field by field, magic first.
    let magic = unsafe { (&raw const (*descriptor).magic).read_unaligned() };
    if magic != abi::MAGIC {
        return Err(LoadError::BadMagic {
            path: path.to_owned(),
            found: magic,
            expected: abi::MAGIC,
        });
    }
    // SAFETY: as above; the magic says this is a weft descriptor header.
    let (major, minor, size) = unsafe {
        (
            (*descriptor).abi_major,
            (*descriptor).abi_minor,
            (*descriptor).size,
        )
    };
    if major != abi::ABI_MAJOR {
        return Err(LoadError::AbiMajor {
            path: path.to_owned(),
            found: major,
            found_minor: minor,
            expected: abi::ABI_MAJOR,
        });
    }
    if minor > abi::ABI_MINOR {
        return Err(LoadError::AbiMinor {
            path: path.to_owned(),
            major,
            found: minor,
            expected: abi::ABI_MINOR,
        });
    }
    if size < size_of::<abi::PluginDescriptor>() {
        return Err(invalid(format!(
            "its size is {size} bytes, less than the {} of ABI {major}.0",
            size_of::<abi::PluginDescriptor>()
        )));
    }

    // SAFETY: the size covers every field of this version.
    let descriptor = unsafe { &*descriptor };
    // SAFETY: descriptor strings are static.
    let name = text(unsafe { descriptor.name.as_slice() })
        .map_err(|_| invalid("its name is not UTF-8".into()))?;
    if !is_plugin_name(name) {
        return Err(invalid(format!(
            "its name `{name}` is not lowercase letters, digits, `_` and `-`, starting with a letter"
        )));
    }
    // SAFETY: as above.
    let version_text = text(unsafe { descriptor.version.as_slice() })
        .map_err(|_| invalid("its version is not UTF-8".into()))?;
    let version = semver::Version::parse(version_text).map_err(|error| {
        invalid(format!(
            "its version `{version_text}` is not semver: {error}"
        ))
    })?;
    // SAFETY: as above.
    let sdk_version = text(unsafe { descriptor.sdk_version.as_slice() })
        .map_err(|_| invalid("its SDK version is not UTF-8".into()))?;

    if descriptor.job_count > 0 && descriptor.job_size < size_of::<abi::JobDescriptor>() {
        return Err(invalid(format!(
            "its job descriptors are {} bytes, less than the {} of ABI {major}.0",
            descriptor.job_size,
            size_of::<abi::JobDescriptor>()
        )));
    }
    let mut jobs = IndexMap::new();
    for at in 0..descriptor.job_count {
        // SAFETY: `jobs` holds `job_count` descriptors, `job_size` bytes apart.
        let job = unsafe {
            &*descriptor
                .jobs
                .cast::<u8>()
                .add(at * descriptor.job_size)
                .cast::<abi::JobDescriptor>()
        };
        // SAFETY: job descriptors hold static strings.
        let job =
            unsafe { read_job(job) }.map_err(|reason| invalid(format!("job {at}: {reason}")))?;
        if jobs.contains_key(&job.name) {
            return Err(invalid(format!("the job `{}` is listed twice", job.name)));
        }
        jobs.insert(job.name.clone(), job);
    }

    Ok(Plugin {
        name: name.to_owned(),
        version,
        sdk_version: sdk_version.to_owned(),
        abi: (major, minor),
        path: path.to_owned(),
        jobs,
    })
}

/// # Safety
///
/// The job descriptor's strings are valid for the life of the process.
unsafe fn read_job(job: &abi::JobDescriptor) -> Result<Job, String> {
    // SAFETY: the caller promises the strings are valid.
    let (name, description, input, output) = unsafe {
        (
            job.name.as_slice(),
            job.description.as_slice(),
            job.input_schema.as_slice(),
            job.output_schema.as_slice(),
        )
    };
    let name = text(name).map_err(|_| "its name is not UTF-8".to_owned())?;
    if !weft_spec::is_identifier(name) {
        return Err(format!(
            "the job name `{name}` is not lowercase letters, digits and `_`, starting with a letter"
        ));
    }
    let schema = |bytes: &[u8], which: &str| {
        serde_json::from_slice::<Value>(bytes)
            .map_err(|error| format!("the {which} schema of `{name}` is not JSON: {error}"))
    };

    Ok(Job {
        name: name.to_owned(),
        description: text(description)
            .map_err(|_| format!("the description of `{name}` is not UTF-8"))?
            .to_owned(),
        input_schema: schema(input, "input")?,
        output_schema: schema(output, "output")?,
        waits: job.flags & abi::JOB_FLAG_WAITS != 0,
        call: job.call,
        data: job.data,
        validator: OnceLock::new(),
    })
}

fn text(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    std::str::from_utf8(bytes)
}

/// Whether `name` can name a plugin: `^[a-z][a-z0-9_-]*$`.
pub fn is_plugin_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}
