//! The order of DynamoDB Streams sequence numbers.

use std::cmp::Ordering;

/// Orders two sequence numbers: decimal strings of any length (they overflow i64).
pub fn compare_sequence_numbers(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_as_numbers() {
        let cases = [
            ("9", "10", Ordering::Less),
            (
                "1100000000017454423009",
                "1100000000017454423010",
                Ordering::Less,
            ),
            (
                "1100000000017454423009",
                "999999999999999999",
                Ordering::Greater,
            ),
            ("000123", "123", Ordering::Equal),
            (
                "49590338271490256608559692538361571095921575989136588898",
                "5",
                Ordering::Greater,
            ),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare_sequence_numbers(a, b), expected, "{a} vs {b}");
        }
    }
}
