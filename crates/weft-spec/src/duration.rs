//! Durations as workflow files write them: `250ms`, `30s`, `5m`, `1h 30m`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::yaml::HINT_SEPARATOR;

/// How durations are written, for hints.
const HOW: &str = "write a number with a unit, such as `250ms`, `30s`, `5m` or `1h 30m`";

/// A length of time, written with units (`30s`, `1h 30m`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// The duration as the standard library's type.
    pub fn get(self) -> std::time::Duration {
        self.0
    }

    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self(std::time::Duration::from_millis(millis))
    }

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }
}

/// Why a duration did not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid duration `{text}`: {reason}")]
pub struct ParseDurationError {
    text: String,
    reason: String,
}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let error = |reason: String| ParseDurationError {
            text: text.to_owned(),
            reason,
        };

        if trimmed.is_empty() {
            return Err(error("it is empty".to_owned()));
        }
        if trimmed
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte == b'.')
        {
            return Err(error("it has no unit".to_owned()));
        }
        humantime::parse_duration(trimmed)
            .map(Duration)
            .map_err(|cause| error(reason(trimmed, &cause)))
    }
}

/// Says what is wrong in the user's terms, pointing at the text rather than at byte offsets.
fn reason(text: &str, error: &humantime::DurationError) -> String {
    let rest = |at: usize| text.get(at..).unwrap_or_default();
    match error {
        humantime::DurationError::UnknownUnit { unit, .. } => {
            format!(
                "unknown unit `{unit}`; the units are ns, us, ms, s, m, h, d, w (and their long names)"
            )
        }
        humantime::DurationError::NumberExpected(at) => {
            format!("expected a number before `{}`", rest(*at))
        }
        humantime::DurationError::InvalidCharacter(at) => {
            let character = rest(*at).chars().next().unwrap_or(' ');
            format!("unexpected character `{character}`")
        }
        humantime::DurationError::NumberOverflow => "it is too long".to_owned(),
        humantime::DurationError::Empty => "it is empty".to_owned(),
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as `30s`")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
                text.parse()
                    .map_err(|error| E::custom(format!("{error}{HINT_SEPARATOR}{HOW}")))
            }

            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "invalid duration `{number}`: it has no unit{HINT_SEPARATOR}{HOW}"
                )))
            }

            fn visit_i64<E: de::Error>(self, number: i64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "invalid duration `{number}`: it has no unit{HINT_SEPARATOR}{HOW}"
                )))
            }

            fn visit_f64<E: de::Error>(self, number: f64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "invalid duration `{number}`: it has no unit{HINT_SEPARATOR}{HOW}"
                )))
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration with units: `250ms`, `30s`, `5m`, `1h 30m`.",
            "pattern": r"^\s*([0-9]+(\.[0-9]+)?\s*[a-zµ]+\s*)+$",
            "examples": ["250ms", "30s", "5m", "1h 30m"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_combinations_parse() {
        assert_eq!(
            "250ms".parse::<Duration>().unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!("30s".parse::<Duration>().unwrap(), Duration::from_secs(30));
        assert_eq!("5m".parse::<Duration>().unwrap(), Duration::from_secs(300));
        assert_eq!(
            "1h 30m".parse::<Duration>().unwrap(),
            Duration::from_secs(5400)
        );
    }

    #[test]
    fn a_number_without_unit_is_refused() {
        let error = "30".parse::<Duration>().unwrap_err();
        assert_eq!(error.to_string(), "invalid duration `30`: it has no unit");
    }

    #[test]
    fn an_unknown_unit_is_refused_with_the_text() {
        let error = "5 parsecs".parse::<Duration>().unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid duration `5 parsecs`: "),
            "{error}"
        );
    }

    #[test]
    fn display_round_trips() {
        let duration: Duration = "1h 30m".parse().unwrap();
        assert_eq!(duration.to_string().parse::<Duration>().unwrap(), duration);
    }
}
