//! Jobs on numbers: `sum`, `range` and `top`.

use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::Number;
use weft_plugin::{Job, JobContext, JobError, JsonSchema};

/// Adds numbers up.
#[derive(Debug, Default)]
pub struct Sum;

/// The input of `std.sum`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SumInput {
    /// The numbers to add. The sum is an integer when every one is written as an integer
    /// (`2`, not `2.0`), and a float otherwise; an empty list sums to `0`.
    #[schemars(with = "Vec<Number>")]
    values: Total,
}

impl Job for Sum {
    const NAME: &'static str = "sum";
    const DESCRIPTION: &'static str =
        "Adds `values` up: an integer when all are integers, else a float.";
    type Input = SumInput;
    type Output = Number;

    fn run(&self, _: &JobContext<'_>, input: SumInput) -> Result<Number, JobError> {
        let Total { integer, float } = input.values;
        match integer {
            Some(total) => i64::try_from(total)
                .map(Number::from)
                .map_err(|_| JobError::fatal("the sum overflows a 64-bit integer")),
            None => Number::from_f64(float)
                .ok_or_else(|| JobError::fatal("the sum is too large for a float")),
        }
    }
}

/// The sum of a list of numbers, added up as the list is read, so that a fan-in over a
/// million outputs never holds them all.
///
/// `integer` runs in 128 bits while every value is an integer, so that only the total has
/// to fit in 64 (`[MAX, 1, -1]` sums to `MAX`); 2^63 values of at most 2^64 cannot overflow
/// 128 bits. `float` adds every value as a float, in order, for when one is not an integer.
#[derive(Debug)]
struct Total {
    integer: Option<i128>,
    float: f64,
}

impl<'de> Deserialize<'de> for Total {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(TotalVisitor)
    }
}

struct TotalVisitor;

impl<'de> Visitor<'de> for TotalVisitor {
    type Value = Total;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a list of numbers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut values: A) -> Result<Total, A::Error> {
        let mut total = Total {
            integer: Some(0),
            // The float sum starts from -0.0, the identity of IEEE addition, so that the sum
            // of `[-0.0]` keeps its sign.
            float: -0.0,
        };
        while let Some(value) = values.next_element::<Number>()? {
            let whole = value
                .as_i64()
                .map(i128::from)
                .or_else(|| value.as_u64().map(i128::from));
            total.integer = total.integer.zip(whole).map(|(sum, value)| sum + value);
            total.float += value.as_f64().unwrap_or(0.0);
        }
        Ok(total)
    }
}

/// Adds up counts by key and keeps the largest.
#[derive(Debug, Default)]
pub struct Top;

/// The input of `std.top`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopInput {
    /// Objects of counts, such as the outputs of a fan-out of `text.word_counts`: the counts
    /// of one key are added up across them.
    counts: Vec<std::collections::BTreeMap<String, u64>>,
    /// How many keys to keep.
    #[serde(default = "ten")]
    limit: usize,
}

fn ten() -> usize {
    10
}

/// One key of `std.top`'s output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, JsonSchema)]
pub struct Ranked {
    /// The key.
    pub key: String,
    /// Its total count.
    pub count: u64,
}

impl Job for Top {
    const NAME: &'static str = "top";
    const DESCRIPTION: &'static str =
        "Adds up `counts` by key and returns the `limit` largest, largest first.";
    type Input = TopInput;
    /// The keys with the largest totals, largest first; ties in byte order of the keys.
    type Output = Vec<Ranked>;

    fn run(&self, context: &JobContext<'_>, input: TopInput) -> Result<Vec<Ranked>, JobError> {
        let mut totals: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        for counts in input.counts {
            context.check()?;
            for (key, count) in counts {
                let total = totals.entry(key).or_default();
                *total = total.saturating_add(count);
            }
        }
        let mut ranked: Vec<Ranked> = totals
            .into_iter()
            .map(|(key, count)| Ranked { key, count })
            .collect();
        ranked.sort_unstable_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
        ranked.truncate(input.limit);
        Ok(ranked)
    }
}

/// The most items `std.range` makes, to keep a typo from filling the memory.
const MAX_RANGE_LEN: i128 = 10_000_000;

/// Makes a list of integers, for fan-outs.
#[derive(Debug, Default)]
pub struct Range;

/// The input of `std.range`: the integers `start`, `start + step`, ... up to `end`, which
/// is left out (as Python's `range` does).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RangeInput {
    /// Where the range stops; never part of it.
    end: i64,
    /// The first integer.
    #[serde(default)]
    start: i64,
    /// The step between two integers: negative to count down, never 0.
    #[serde(default = "default_step")]
    step: i64,
}

fn default_step() -> i64 {
    1
}

impl Job for Range {
    const NAME: &'static str = "range";
    const DESCRIPTION: &'static str =
        "Lists the integers from `start` (0) up to `end` (excluded) by `step` (1).";
    type Input = RangeInput;
    type Output = Vec<i64>;

    fn run(&self, _: &JobContext<'_>, input: RangeInput) -> Result<Vec<i64>, JobError> {
        let RangeInput { end, start, step } = input;
        if step == 0 {
            return Err(JobError::fatal("`step` must not be 0"));
        }

        let len = range_len(start, end, step);
        if len > MAX_RANGE_LEN {
            return Err(JobError::fatal(format!(
                "the range from {start} to {end} by {step} has {len} items, more than the \
                 {MAX_RANGE_LEN} that `range` makes"
            )));
        }

        let len = usize::try_from(len).unwrap_or_default();
        Ok(
            std::iter::successors(Some(start), |value| value.checked_add(step))
                .take(len)
                .collect(),
        )
    }
}

/// How many items the range has, computed in 128 bits so that no input overflows.
fn range_len(start: i64, end: i64, step: i64) -> i128 {
    let (start, end, step) = (i128::from(start), i128::from(end), i128::from(step));
    let span = if step > 0 { end - start } else { start - end };
    let step = step.abs();
    if span <= 0 {
        0
    } else {
        (span + step - 1) / step
    }
}

#[cfg(test)]
mod top_tests {
    use serde_json::json;
    use weft_plugin::testing::TestCall;

    use super::*;

    #[test]
    fn top_adds_counts_across_objects_and_keeps_the_largest() {
        let input = json!({"counts": [{"a": 2, "b": 1}, {"b": 3, "c": 1}, {}], "limit": 2});

        let output = TestCall::new().run(&Top, input).unwrap();

        assert_eq!(
            output,
            json!([{"key": "b", "count": 4}, {"key": "a", "count": 2}])
        );
    }

    #[test]
    fn ties_are_broken_by_key() {
        let input = json!({"counts": [{"z": 1, "y": 1, "x": 1}]});

        let output = TestCall::new().run(&Top, input).unwrap();

        assert_eq!(output[0]["key"], "x");
        assert_eq!(output.as_array().unwrap().len(), 3);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use weft_plugin::testing::TestCall;

    use super::*;

    fn sum(values: Value) -> Result<Value, JobError> {
        TestCall::new().run(&Sum, json!({ "values": values }))
    }

    fn range(input: Value) -> Result<Value, JobError> {
        TestCall::new().run(&Range, input)
    }

    #[test]
    fn sum_of_integers_is_an_integer() {
        let output = sum(json!([1, 2, 3, -4])).unwrap();

        assert_eq!(output, json!(2));
        assert!(output.is_i64());
    }

    #[test]
    fn sum_with_one_float_is_a_float() {
        let output = sum(json!([1, 2.5, 3])).unwrap();

        assert_eq!(output, json!(6.5));
    }

    #[test]
    fn sum_counts_an_integer_written_with_a_point_as_a_float() {
        let output = sum(json!([1, 2.0])).unwrap();

        assert!(output.is_f64(), "{output}");
        assert_eq!(output.as_f64(), Some(3.0));
    }

    #[test]
    fn sum_of_negative_zeros_keeps_the_sign() {
        let output = sum(json!([-0.0, -0.0])).unwrap();

        assert!(output.as_f64().unwrap().is_sign_negative(), "{output}");
        assert_eq!(sum(json!([-0.0, 0.0])).unwrap(), json!(0.0));
    }

    #[test]
    fn sum_of_nothing_is_zero() {
        assert_eq!(sum(json!([])).unwrap(), json!(0));
    }

    #[test]
    fn sum_refuses_a_total_that_overflows_64_bits() {
        let error = sum(json!([i64::MAX, 1])).unwrap_err();

        assert_eq!(error.message(), "the sum overflows a 64-bit integer");
        assert!(!error.is_retryable());
    }

    #[test]
    fn sum_overflows_only_when_the_total_does() {
        assert_eq!(sum(json!([i64::MAX, 1, -1])).unwrap(), json!(i64::MAX));
        assert_eq!(sum(json!([u64::MAX, i64::MIN])).unwrap(), json!(i64::MAX));
        assert_eq!(sum(json!([i64::MIN])).unwrap(), json!(i64::MIN));
    }

    #[test]
    fn sum_refuses_a_float_total_too_large() {
        let error = sum(json!([1e308, 1e308])).unwrap_err();

        assert_eq!(error.message(), "the sum is too large for a float");
    }

    #[test]
    fn sum_refuses_values_that_are_not_numbers() {
        let error = sum(json!([1, "2"])).unwrap_err();

        assert!(
            error.message().starts_with("invalid input for `sum`"),
            "{error}"
        );
    }

    #[test]
    fn range_counts_from_zero_by_one() {
        assert_eq!(range(json!({"end": 4})).unwrap(), json!([0, 1, 2, 3]));
    }

    #[test]
    fn range_leaves_out_the_end_with_any_step() {
        assert_eq!(
            range(json!({"start": 2, "end": 11, "step": 3})).unwrap(),
            json!([2, 5, 8])
        );
        assert_eq!(
            range(json!({"start": 2, "end": 12, "step": 3})).unwrap(),
            json!([2, 5, 8, 11])
        );
    }

    #[test]
    fn range_counts_down_with_a_negative_step() {
        assert_eq!(
            range(json!({"start": 5, "end": 0, "step": -2})).unwrap(),
            json!([5, 3, 1])
        );
    }

    #[test]
    fn range_is_empty_when_the_step_walks_away_from_the_end() {
        assert_eq!(range(json!({"start": 5, "end": 0})).unwrap(), json!([]));
        assert_eq!(range(json!({"end": 5, "step": -1})).unwrap(), json!([]));
        assert_eq!(range(json!({"end": 0})).unwrap(), json!([]));
    }

    #[test]
    fn range_reaches_the_edges_of_64_bits_without_overflow() {
        assert_eq!(
            range(json!({"start": i64::MAX - 2, "end": i64::MAX, "step": 5})).unwrap(),
            json!([i64::MAX - 2])
        );
        assert_eq!(
            range(json!({"start": i64::MIN + 1, "end": i64::MIN, "step": -1})).unwrap(),
            json!([i64::MIN + 1])
        );
    }

    #[test]
    fn range_refuses_a_step_of_zero() {
        let error = range(json!({"end": 3, "step": 0})).unwrap_err();

        assert_eq!(error.message(), "`step` must not be 0");
        assert!(!error.is_retryable());
    }

    #[test]
    fn range_refuses_more_than_ten_million_items() {
        let error = range(json!({"end": 10_000_001})).unwrap_err();

        assert!(error.message().contains("10000001 items"), "{error}");
        assert!(!error.is_retryable());
        assert_eq!(range_len(0, 10_000_000, 1), MAX_RANGE_LEN);
    }

    #[test]
    fn range_length_matches_the_items_made() {
        let cases: [(i64, i64, i64); 5] =
            [(0, 10, 3), (-7, 7, 2), (7, -7, -3), (0, 1, 100), (3, 3, 1)];
        for (start, end, step) in cases {
            let items = range(json!({"start": start, "end": end, "step": step})).unwrap();

            let expected: Vec<i64> = if step > 0 {
                (start..end).step_by(step.unsigned_abs() as usize).collect()
            } else {
                ((end + 1)..=start)
                    .rev()
                    .step_by(step.unsigned_abs() as usize)
                    .collect()
            };
            assert_eq!(items, json!(expected), "{start}..{end} by {step}");
        }
    }
}
