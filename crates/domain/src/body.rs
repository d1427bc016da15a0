//! The envelope check of a request body: size, UTF-8, a JSON object with a field.

/// Bodies above this are refused with 413: well under DynamoDB's 400 KB item limit, with
/// room for the other attributes.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

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
    #[error("the request body is not valid JSON: {0}")]
    NotJson(String),
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
        if text.trim().is_empty() {
            return Err(BodyError::Empty);
        }
        // serde_json's recursion limit (128) turns absurdly deep nesting into a 400
        // instead of a stack overflow.
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| BodyError::NotJson(e.to_string()))?;
        match value.as_object() {
            None => return Err(BodyError::NotAnObject),
            Some(members) if members.is_empty() => return Err(BodyError::EmptyObject),
            Some(_) => {}
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
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
                    "{e} should mention {fragment}"
                )
            }
            (got, expected) => panic!("{input:?}: got {got:?}, expected {expected:?}"),
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
}
