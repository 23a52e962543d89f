//! A job's error, as the engine receives it: `{message, retryable, details}`.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// Why a job failed.
///
/// By default an error is retryable: the engine tries the job again while the stage's
/// `retry` allows. [`JobError::fatal`] marks errors that another attempt cannot fix (a
/// missing file, a bad argument).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobError {
    message: String,
    retryable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Value>,
    #[serde(skip)]
    cancelled: bool,
}

impl JobError {
    /// An error that another attempt may fix.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
            details: None,
            cancelled: false,
        }
    }

    /// An error that another attempt cannot fix: the engine does not retry it.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            ..Self::new(message)
        }
    }

    /// The job stopped because it was cancelled.
    pub fn cancelled() -> Self {
        Self {
            retryable: false,
            cancelled: true,
            ..Self::new("cancelled")
        }
    }

    /// Attaches structured details (an exit code, the tail of a log), shown with the error.
    #[must_use]
    pub fn with_details(mut self, details: impl Serialize) -> Self {
        self.details = serde_json::to_value(details).ok();
        self
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The structured details, if any.
    pub fn details(&self) -> Option<&Value> {
        self.details.as_ref()
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// Whether the job stopped because it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Any error converts into a retryable job error carrying its message and its causes, so
/// that `?` works in [`crate::Job::run`].
impl<E: std::error::Error> From<E> for JobError {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::new(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialize_as_the_abi_expects() {
        let error = JobError::fatal("no such file").with_details(serde_json::json!({"path": "a"}));

        let json = serde_json::to_value(&error).unwrap();

        assert_eq!(
            json,
            serde_json::json!({"message": "no such file", "retryable": false, "details": {"path": "a"}})
        );
    }

    #[test]
    fn std_errors_convert_with_their_causes() {
        let error: JobError = std::io::Error::new(std::io::ErrorKind::NotFound, "gone").into();

        assert_eq!(error.message(), "gone");
        assert!(error.is_retryable());
    }
}
