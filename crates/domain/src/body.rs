//! The envelope check of a request body: size, and an I-JSON object (RFC 7493) with a
//! field.

use std::{collections::HashSet, fmt};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Bodies above this are refused with 413: well under DynamoDB's 400 KB item limit, with
/// room for the other attributes.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// The largest magnitude a number may have: the largest IEEE 754 double, as JSON
/// serializers write it. API Gateway's request model holds the same bound.
pub const LARGEST_NUMBER: &str = "1.7976931348623157e308";

/// A request body that passed the envelope check: a JSON object, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBody(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is empty: send a JSON object")]
    Empty,
    #[error("the request body is over the limit of {limit} bytes: send less")]
    TooLarge { limit: usize },
    #[error("the request body is not valid UTF-8: send a JSON object")]
    NotUtf8,
    #[error(
        "the request body starts with a byte order mark (U+FEFF): send the JSON object without it"
    )]
    ByteOrderMark,
    /// Raw U+0000..U+001F other than tab, LF and CR: JSON allows them nowhere (whitespace
    /// is only those three, and strings need them escaped).
    #[error(
        "the request body holds the control character U+{0:04X} unescaped: JSON allows it only \
         escaped inside a string, as \\u{0:04x}"
    )]
    ControlCharacter(u32),
    #[error("the request body is not valid JSON: {0}")]
    NotJson(String),
    /// I-JSON: strings and names are Unicode text, which a lone surrogate is not.
    #[error(
        "the request body has a lone surrogate escape ({0}): escape a character beyond U+FFFF \
         as a high and low surrogate pair, or send it as UTF-8"
    )]
    LoneSurrogate(String),
    /// I-JSON: the magnitude of an IEEE 754 double at most.
    #[error(
        "the request body has the number {0}, beyond the largest double ({LARGEST_NUMBER}): send \
         it as a string"
    )]
    NumberTooLarge(String),
    /// I-JSON: parsers disagree on which of two same-named members wins.
    #[error("the request body has a {0}: send each name once per object")]
    DuplicateName(String),
    #[error(
        "the request body is JSON but not an object: send a JSON object such as {{\"key\": \"value\"}}"
    )]
    NotAnObject,
    /// `{}`: API Gateway may hand an empty body to its templates as `{}`, so a request must
    /// say something for both runtimes to tell it from an empty one.
    #[error("the request body is an empty JSON object: send at least one field")]
    EmptyObject,
}

impl RequestBody {
    /// Checks the envelope only (storage first: the processor judges the content later).
    pub fn parse(bytes: &[u8], limit: usize) -> Result<Self, BodyError> {
        if bytes.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| BodyError::NotUtf8)?;
        Self::check(text)?;
        Ok(Self(text.to_owned()))
    }

    /// The envelope check of a body that is already stored, without the size limit (it
    /// was applied when the body was accepted): for a store the API did not write alone.
    pub fn stored(text: &str) -> Result<(), BodyError> {
        Self::check(text)
    }

    fn check(text: &str) -> Result<(), BodyError> {
        if text.starts_with('\u{feff}') {
            return Err(BodyError::ByteOrderMark);
        }
        if let Some(control) = text
            .bytes()
            .find(|b| *b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
        {
            return Err(BodyError::ControlCharacter(control.into()));
        }
        if text.trim().is_empty() {
            return Err(BodyError::Empty);
        }
        // serde_json's recursion limit (128) turns absurdly deep nesting into a 400
        // instead of a stack overflow.
        let parsed = serde_json::from_str::<Shape>(text);
        // A JSON text is I-JSON or not whatever else is wrong with it, so the I-JSON reason
        // is the more useful one (serde_json refuses lone surrogates and 1e400 too).
        if let Some(violation) = beyond_i_json(text) {
            return Err(violation);
        }
        let shape = parsed.map_err(|e| match e.classify() {
            // The only error the shape raises itself.
            serde_json::error::Category::Data => BodyError::DuplicateName(e.to_string()),
            _ => BodyError::NotJson(e.to_string()),
        })?;
        match shape {
            Shape::Object { members: 0 } => Err(BodyError::EmptyObject),
            Shape::Object { .. } => Ok(()),
            Shape::Other => Err(BodyError::NotAnObject),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the check needs of a JSON value: whether it is an object, and of how many
/// members. Parsing into it refuses an object with two members of the same name.
enum Shape {
    Object { members: usize },
    Other,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        while seq.next_element::<Shape>()?.is_some() {}
        Ok(Shape::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut names = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if names.contains(&name) {
                return Err(de::Error::custom(format_args!(
                    "duplicate member name {name:?}"
                )));
            }
            map.next_value::<Shape>()?;
            names.insert(name);
        }
        Ok(Shape::Object {
            members: names.len(),
        })
    }
}

/// The first lone surrogate escape or too large number in a JSON text, read token by
/// token: exact for valid JSON; for invalid JSON only a better reason than a syntax error.
fn beyond_i_json(text: &str) -> Option<BodyError> {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => match string_end(text, at + 1) {
                Ok(end) => at = end,
                Err(escape) => return Some(BodyError::LoneSurrogate(escape)),
            },
            b'-' | b'0'..=b'9' => {
                let start = at;
                while bytes
                    .get(at)
                    .is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    at += 1;
                }
                let number = &text[start..at];
                if too_large(number) {
                    return Some(BodyError::NumberTooLarge(number.to_owned()));
                }
            }
            _ => at += 1,
        }
    }
    None
}

/// Where the string whose contents start at `at` ends (after its closing quote), or the
/// lone surrogate escape in it.
fn string_end(text: &str, mut at: usize) -> Result<usize, String> {
    let bytes = text.as_bytes();
    // The UTF-16 code unit of a `\uXXXX` escape at `at`.
    let unit = |at: usize| {
        let escape = text.get(at..at + 6)?.strip_prefix("\\u")?;
        u16::from_str_radix(escape, 16).ok()
    };
    while at < bytes.len() {
        match bytes[at] {
            b'"' => return Ok(at + 1),
            b'\\' => match unit(at) {
                Some(0xD800..=0xDBFF) if matches!(unit(at + 6), Some(0xDC00..=0xDFFF)) => at += 12,
                Some(0xD800..=0xDFFF) => return Err(text[at..at + 6].to_owned()),
                Some(_) => at += 6,
                None => at += 2,
            },
            _ => at += 1,
        }
    }
    Ok(at)
}

/// Whether a JSON number's magnitude is beyond [`LARGEST_NUMBER`], decided on its digits
/// (a double would round some of those numbers down to the largest double).
fn too_large(number: &str) -> bool {
    let unsigned = number.trim_start_matches('-');
    let (mantissa, exponent) = unsigned.split_once(['e', 'E']).unwrap_or((unsigned, "0"));
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{integer}{fraction}");
    let Some(first) = digits.find(|c| c != '0') else {
        return false;
    };
    let significant = digits[first..].trim_end_matches('0');
    // The power of ten of the first significant digit, as of the largest double's (308).
    let (negative, exponent) = match exponent.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, exponent.trim_start_matches('+')),
    };
    // Saturated well beyond any power a body within the limit can offset.
    let power = exponent.bytes().fold(0_i64, |n, d| {
        (n * 10 + i64::from(d.wrapping_sub(b'0').min(9))).min(1 << 40)
    });
    let power = if negative { -power } else { power };
    let lead = power + integer.len() as i64 - first as i64 - 1;
    let (largest_lead, largest_digits) = (308, "17976931348623157");
    match lead.cmp(&largest_lead) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        // Digit strings without trailing zeros: a longer one with the same start is larger.
        std::cmp::Ordering::Equal => significant > largest_digits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &[u8], expected: Result<(), &str>) {
        let got = RequestBody::parse(input, 1024).map(|b| assert_eq!(b.as_str().as_bytes(), input));
        match (got, expected) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err(fragment)) => {
                assert!(
                    e.to_string().contains(fragment),
                    "{:?}: {e} should mention {fragment}",
                    String::from_utf8_lossy(input)
                )
            }
            (got, expected) => panic!(
                "{:?}: got {got:?}, expected {expected:?}",
                String::from_utf8_lossy(input)
            ),
        }
    }

    #[test]
    fn bodies() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let deep_object = format!("{{\"a\":{deep}}}");
        let cases: &[(&[u8], Result<(), &str>)] = &[
            (br#"{"a":1}"#, Ok(())),
            (b" {\"q\": \"it's \\\\ \\n \xF0\x9F\x8D\x95\"} ", Ok(())),
            (br#"{"nested":{"x":[1,{"y":null}]}}"#, Ok(())),
            (b"", Err("empty")),
            (b"   ", Err("empty")),
            (b"{\"a\":\xff}", Err("UTF-8")),
            (b"{a:1}", Err("not valid JSON")),
            (b"[1,2]", Err("not an object")),
            (b"\"text\"", Err("not an object")),
            (b"42", Err("not an object")),
            (b"null", Err("not an object")),
            (b"{}", Err("empty JSON object")),
            (b" {\n\t} ", Err("empty JSON object")),
            (br#"{"":null}"#, Ok(())),
            (deep_object.as_bytes(), Err("not valid JSON")),
            (&[b' '; 1025], Err("over the limit of 1024 bytes")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }

    /// RFC 7493: UTF-8, no lone surrogates, numbers a double can hold, unique names; and
    /// the bytes RFC 8259 allows nowhere, each with its own reason.
    #[test]
    fn i_json() {
        let cases: &[(&[u8], Result<(), &str>)] = &[
            // Surrogates: pairs are characters, halves are not.
            (br#"{"pizza":"\ud83c\udf55"}"#, Ok(())),
            (br#"{"pizza":"\uD83C\uDF55"}"#, Ok(())),
            (br#"{"a":"\ud800"}"#, Err("lone surrogate escape (\\ud800)")),
            (br#"{"a":"\udc00"}"#, Err("lone surrogate escape (\\udc00)")),
            (br#"{"a":"x\ud800y"}"#, Err("lone surrogate")),
            (br#"{"a":"\ud800\ud800\udc00"}"#, Err("(\\ud800)")),
            (br#"{"a":"\ud83c\udf55\udc00"}"#, Err("(\\udc00)")),
            (br#"{"\udfff":1}"#, Err("lone surrogate")),
            (br#"{"a":"\ud800\u0041"}"#, Err("lone surrogate")),
            // An escaped backslash before "u" is no escape.
            (br#"{"a":"\\ud800"}"#, Ok(())),
            (br#"{"a":"\\\ud800"}"#, Err("lone surrogate")),
            // Two halves an escaped backslash keeps apart are two lone halves.
            (br#"{"a":"\ud800\\\udc00"}"#, Err("(\\ud800)")),
            // Raw surrogates are not UTF-8 at all.
            (b"{\"a\":\"\xed\xa0\x80\"}", Err("not valid UTF-8")),
            // Numbers: magnitude up to the largest double, precision unbounded.
            (br#"{"n":1.7976931348623157e308}"#, Ok(())),
            (br#"{"n":-1.7976931348623157E+308}"#, Ok(())),
            (br#"{"n":17976931348623157e292}"#, Ok(())),
            (br#"{"n":0.17976931348623157e309}"#, Ok(())),
            (br#"{"n":1e308}"#, Ok(())),
            (br#"{"n":1e-400}"#, Ok(())),
            (br#"{"n":0e999999999999}"#, Ok(())),
            (br#"{"n":-0.0}"#, Ok(())),
            (br#"{"n":9007199254740993}"#, Ok(())),
            (br#"{"n":123456789012345678901234567890}"#, Ok(())),
            (br#"{"pi":3.141592653589793238462643383279}"#, Ok(())),
            (
                br#"{"n":1e400}"#,
                Err("the number 1e400, beyond the largest double"),
            ),
            (br#"{"n":-1e400}"#, Err("the number -1e400")),
            (br#"{"n":[2e308]}"#, Err("the number 2e308")),
            // Between the largest double and where a double rounds to infinity.
            (
                br#"{"n":1.7976931348623158e308}"#,
                Err("beyond the largest double"),
            ),
            (
                br#"{"n":1.79769313486231571e308}"#,
                Err("beyond the largest double"),
            ),
            (
                br#"{"n":0.00017976931348623158e312}"#,
                Err("beyond the largest double"),
            ),
            (
                br#"{"n":1e99999999999999999999}"#,
                Err("beyond the largest double"),
            ),
            // Numbers inside strings are text.
            (br#"{"n":"1e400","1e999":true}"#, Ok(())),
            // Names: once per object, however escaped; the same name in two objects is fine.
            (br#"{"a":1,"a":2}"#, Err("duplicate member name \"a\"")),
            (br#"{"a":1,"\u0061":2}"#, Err("duplicate member name \"a\"")),
            (
                br#"{"o":{"b":1,"c":{"b":2},"b":3}}"#,
                Err("duplicate member name \"b\""),
            ),
            (br#"{"l":[{"a":1},{"a":2}],"a":3}"#, Ok(())),
            // A byte order mark only at the start; U+FEFF in a string is a character.
            (b"\xef\xbb\xbf{\"a\":1}", Err("byte order mark")),
            (b"{\"a\":\"\xef\xbb\xbf\"}", Ok(())),
            // Control characters: escaped in strings, raw nowhere (whitespace aside).
            (br#"{"a":"\u0000"}"#, Ok(())),
            (b"{\"a\":\"\0\"}", Err("control character U+0000 unescaped")),
            (b"\0{\"a\":1}", Err("U+0000")),
            (b"{\"a\":1}\0", Err("U+0000")),
            (b"{\"a\":\"\x1f\"}", Err("U+001F")),
            (b"{\"a\":\"\x01\"}", Err("as \\u0001")),
            (b"\t{\r\n\"a\":1}\n", Ok(())),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }

    #[test]
    fn a_stored_body_is_checked_without_the_size_limit() {
        let large = format!(r#"{{"a":"{}"}}"#, "x".repeat(2048));
        assert_eq!(RequestBody::stored(&large), Ok(()));
        assert_eq!(
            RequestBody::stored(r#"{"a":1,"a":2}"#),
            Err(BodyError::DuplicateName(
                "duplicate member name \"a\" at line 1 column 10".to_owned()
            ))
        );
    }
}
