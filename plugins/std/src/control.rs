//! Jobs that shape a run rather than compute: `log`, `sleep` and `fail`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weft_plugin::{Job, JobContext, JobError, JsonSchema, Level};

/// Writes a message to the run's log.
#[derive(Debug, Default)]
pub struct Log;

/// The input of `std.log`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogInput {
    /// The message to write.
    message: String,
    /// The level to write it at.
    #[serde(default)]
    level: LogLevel,
}

/// The level of a line in the run's log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Something failed.
    Error,
    /// Something looks wrong.
    Warn,
    /// What the workflow is doing.
    #[default]
    Info,
    /// Detail for debugging.
    Debug,
    /// Fine detail.
    Trace,
}

impl From<LogLevel> for Level {
    fn from(level: LogLevel) -> Self {
        match level {
            LogLevel::Error => Level::Error,
            LogLevel::Warn => Level::Warn,
            LogLevel::Info => Level::Info,
            LogLevel::Debug => Level::Debug,
            LogLevel::Trace => Level::Trace,
        }
    }
}

impl Job for Log {
    const NAME: &'static str = "log";
    const DESCRIPTION: &'static str = "Writes `message` to the run's log at `level`; returns null.";
    type Input = LogInput;
    type Output = ();

    fn run(&self, context: &JobContext<'_>, input: LogInput) -> Result<(), JobError> {
        context.log(input.level.into(), &input.message);
        Ok(())
    }
}

/// Waits for a while, then returns a value; a cancellation ends the wait at once.
#[derive(Debug, Default)]
pub struct Sleep;

/// The input of `std.sleep`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepInput {
    /// How long to wait, in humantime's notation: `250ms`, `2s`, `1m 30s`, `1h`.
    #[schemars(example = "250ms")]
    duration: String,
    /// The value to return after the wait; `null` when left out.
    #[serde(default)]
    value: Value,
}

impl Job for Sleep {
    const NAME: &'static str = "sleep";
    const DESCRIPTION: &'static str =
        "Waits for `duration`, then returns `value` (or null); a cancellation ends it at once.";
    const WAITS: bool = true;
    type Input = SleepInput;
    type Output = Value;

    fn run(&self, context: &JobContext<'_>, input: SleepInput) -> Result<Value, JobError> {
        let duration = parse_duration(&input.duration)?;

        context.sleep(duration)?;

        Ok(input.value)
    }
}

/// Reads a duration such as `250ms` or `1m 30s`.
fn parse_duration(text: &str) -> Result<Duration, JobError> {
    humantime::parse_duration(text.trim()).map_err(|error| {
        JobError::fatal(format!(
            "invalid `duration` `{text}`: {error} (write it as `250ms`, `2s` or `1m 30s`)"
        ))
    })
}

/// Fails with a message: on every attempt, or only on attempts before a given one.
#[derive(Debug, Default)]
pub struct Fail;

/// The input of `std.fail`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailInput {
    /// The error's message.
    message: String,
    /// The first attempt (counted from 1) that succeeds, returning null; when left out,
    /// every attempt fails.
    #[schemars(range(min = 1))]
    until_attempt: Option<u32>,
}

impl Job for Fail {
    const NAME: &'static str = "fail";
    const DESCRIPTION: &'static str = "Fails with `message` (a retryable error) on every attempt, or only before `until_attempt`.";
    type Input = FailInput;
    type Output = ();

    fn run(&self, context: &JobContext<'_>, input: FailInput) -> Result<(), JobError> {
        let attempt = context.attempt();
        let succeeds = input.until_attempt.is_some_and(|until| attempt >= until);
        if succeeds {
            return Ok(());
        }

        Err(JobError::new(input.message).with_details(serde_json::json!({ "attempt": attempt })))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::json;
    use weft_plugin::testing::TestCall;

    use super::*;

    #[test]
    fn log_writes_the_message_at_info_by_default() {
        let call = TestCall::new();

        let output = call.run(&Log, json!({"message": "hello"})).unwrap();

        assert_eq!(output, Value::Null);
        assert_eq!(call.logs(), vec![(Level::Info, "hello".to_owned())]);
    }

    #[test]
    fn log_writes_the_message_at_the_level_asked_for() {
        for (name, level) in [
            ("error", Level::Error),
            ("warn", Level::Warn),
            ("info", Level::Info),
            ("debug", Level::Debug),
            ("trace", Level::Trace),
        ] {
            let call = TestCall::new();

            call.run(&Log, json!({"message": "m", "level": name}))
                .unwrap();

            assert_eq!(call.logs(), vec![(level, "m".to_owned())]);
        }
    }

    #[test]
    fn log_refuses_an_unknown_level() {
        let error = TestCall::new()
            .run(&Log, json!({"message": "m", "level": "loud"}))
            .unwrap_err();

        assert!(
            error.message().contains("unknown variant `loud`"),
            "{error}"
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn sleep_returns_the_value_after_the_duration() {
        let started = Instant::now();

        let output = TestCall::new()
            .run(&Sleep, json!({"duration": "30ms", "value": {"a": 1}}))
            .unwrap();

        assert_eq!(output, json!({"a": 1}));
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn sleep_returns_null_without_a_value() {
        let output = TestCall::new()
            .run(&Sleep, json!({"duration": "1ms"}))
            .unwrap();

        assert_eq!(output, Value::Null);
    }

    #[test]
    fn sleep_ends_at_once_with_a_cancelled_error_when_cancelled() {
        let started = Instant::now();

        let error = TestCall::new()
            .cancelled()
            .run(&Sleep, json!({"duration": "1h"}))
            .unwrap_err();

        assert!(error.is_cancelled());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn sleep_refuses_a_duration_it_cannot_read() {
        let error = TestCall::new()
            .run(&Sleep, json!({"duration": "soon"}))
            .unwrap_err();

        assert!(
            error.message().starts_with("invalid `duration` `soon`"),
            "{error}"
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn sleep_reads_compound_durations() {
        assert_eq!(parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn fail_fails_with_a_retryable_error_on_every_attempt() {
        for attempt in [1, 2, 10] {
            let error = TestCall::new()
                .attempt(attempt)
                .run(&Fail, json!({"message": "broken"}))
                .unwrap_err();

            assert_eq!(error.message(), "broken");
            assert!(error.is_retryable());
        }
    }

    #[test]
    fn fail_succeeds_with_null_from_the_attempt_given() {
        let input = json!({"message": "flaky", "until_attempt": 3});

        let first = TestCall::new().attempt(1).run(&Fail, input.clone());
        let second = TestCall::new().attempt(2).run(&Fail, input.clone());
        let third = TestCall::new().attempt(3).run(&Fail, input.clone());
        let fourth = TestCall::new().attempt(4).run(&Fail, input);

        assert_eq!(first.unwrap_err().message(), "flaky");
        assert_eq!(second.unwrap_err().message(), "flaky");
        assert_eq!(third.unwrap(), Value::Null);
        assert_eq!(fourth.unwrap(), Value::Null);
    }

    #[test]
    fn fail_refuses_unknown_fields() {
        let error = TestCall::new()
            .run(&Fail, json!({"message": "m", "until": 2}))
            .unwrap_err();

        assert!(error.message().contains("unknown field `until`"), "{error}");
    }
}
