//! Request ids: what a client may choose for PUT, and what a POST id must look like.

use std::fmt;

/// A request's key: chosen by the server on POST, by the client on PUT (then it is the
/// idempotency key). `[A-Za-z0-9._-]{1,128}`, so it is safe in a URL path and a log line,
/// and not only dots: every HTTP client resolves `.` and `..` away before it sends a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid request id {0:?}: use 1 to 128 characters from A-Z, a-z, 0-9, '.', '_' and '-', \
     not only dots"
)]
pub struct InvalidRequestId(pub String);

impl RequestId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(s: &str) -> Result<Self, InvalidRequestId> {
        let valid = (1..=Self::MAX_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && !s.bytes().all(|b| b == b'.');
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidRequestId(
                s.chars().take(Self::MAX_LEN + 1).collect(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, valid: bool) {
        assert_eq!(RequestId::parse(input).is_ok(), valid, "{input:?}");
    }

    #[test]
    fn ids() {
        let longest = "a".repeat(128);
        let too_long = "a".repeat(129);
        for (input, valid) in [
            ("order-1", true),
            ("A.b_C-9", true),
            (longest.as_str(), true),
            ("", false),
            (too_long.as_str(), false),
            ("a/b", false),
            ("a b", false),
            ("ä", false),
            ("..%2F", false),
            ("id\n", false),
            (".", false),
            ("..", false),
            ("...", false),
            ("a.", true),
            ("..a", true),
        ] {
            check(input, valid);
        }
    }
}
