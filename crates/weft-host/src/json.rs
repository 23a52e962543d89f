//! Job output as checked JSON text: what the engine keeps of each job's answer.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// The longest text kept in place rather than on the heap. Most outputs of a wide fan-out
/// are a number, a flag or a short string: a million of them are then a million slots of a
/// vector, not a million allocations to make, read through and free.
const INLINE: usize = 22;

/// JSON text, checked exactly as parsing it into a value would check it (nesting depth,
/// numbers in range, valid escapes), and kept as the text it was, without surrounding
/// whitespace.
///
/// The check is one pass of serde_json's parser that builds nothing; the text is not read
/// again, as `RawValue::from_string` would read it. Short texts are kept in place.
#[derive(Clone)]
pub struct JsonText(Repr);

#[derive(Clone)]
enum Repr {
    /// `bytes[..len]` is the text.
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Heap(Box<str>),
}

impl JsonText {
    /// Checks `text` and keeps it.
    ///
    /// # Errors
    ///
    /// serde_json's error when `text` is not one JSON value.
    pub fn new(text: String) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<Checked>(&text)?;
        let trimmed = text.trim_matches([' ', '\t', '\n', '\r']);
        Ok(Self(if trimmed.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..trimmed.len()].copy_from_slice(trimmed.as_bytes());
            Repr::Inline {
                len: trimmed.len() as u8,
                bytes,
            }
        } else if trimmed.len() == text.len() {
            Repr::Heap(text.into_boxed_str())
        } else {
            Repr::Heap(trimmed.into())
        }))
    }

    /// The text.
    pub fn get(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                // SAFETY: `bytes[..len]` is a copy of a whole `str`, made in `new` and never
                // changed since.
                unsafe { std::str::from_utf8_unchecked(&bytes[..usize::from(*len)]) }
            }
            Repr::Heap(text) => text,
        }
    }
}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for JsonText {}

impl fmt::Debug for JsonText {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_tuple("JsonText")
            .field(&self.get())
            .finish()
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.get())
    }
}

/// A JSON value read through serde_json's full parser and then forgotten.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Checked)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Checked, A::Error> {
        while items.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Checked, A::Error> {
        while entries.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_refused_where_a_parse_into_a_value_would_fail() {
        for bad in [
            r#"{"n": 1e400}"#.to_owned(),
            format!("{}{}", "[".repeat(200), "]".repeat(200)),
            r#""\ud800""#.to_owned(),
            "[1,]".to_owned(),
            "1 2".to_owned(),
            String::new(),
        ] {
            assert!(
                serde_json::from_str::<serde_json::Value>(&bad).is_err(),
                "{bad}"
            );
            assert!(JsonText::new(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_is_kept_as_written_without_surrounding_whitespace() {
        let fits = format!("\"{}\"", "a".repeat(INLINE - 2));
        let spills = format!("\"{}\"", "é".repeat(INLINE / 2));
        let long = r#"{"b": [1, -2, 3.5e10, "\u00e9"], "a": null}"#;
        for good in ["5", r#""é""#, "[]", "-0.5e-3", &fits, &spills, long] {
            assert_eq!(JsonText::new(good.to_owned()).unwrap().get(), good);
            let padded = format!(" \n{good}\t ");
            assert_eq!(JsonText::new(padded).unwrap().get(), good);
        }
        assert_eq!((fits.len(), spills.len()), (INLINE, INLINE + 2));
    }

    #[test]
    fn texts_compare_by_their_text_whatever_their_length() {
        let short = JsonText::new("[1, 2]".to_owned()).unwrap();
        assert_eq!(short, JsonText::new(" [1, 2]".to_owned()).unwrap());
        assert_ne!(short, JsonText::new("[1,2]".to_owned()).unwrap());
        assert_eq!(short.to_string(), "[1, 2]");
        assert_eq!(format!("{short:?}"), r#"JsonText("[1, 2]")"#);
    }
}
