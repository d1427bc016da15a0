//! The Lambda function's size: what the stack deploys and what the local runtime gives its
//! `bootstrap`, so both run the processor alike.

use std::time::Duration;

use storefirst_domain::StreamSettings;

/// The function's memory in MB (Lambda gives CPU in proportion).
pub const MEMORY_MB: u32 = 256;

/// The longest a batch may run: every record of it, `concurrency` at a time, each up to
/// the record timeout, plus room for the outcome writes. Lambda's ceiling is 15 minutes.
pub fn timeout(settings: &StreamSettings) -> Duration {
    let rounds = settings
        .batch_size
        .div_ceil(u32::try_from(settings.concurrency).unwrap_or(u32::MAX));
    (settings.record_timeout * rounds + Duration::from_secs(10)).min(Duration::from_secs(900))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_covers_a_whole_batch() {
        let default = StreamSettings::DEFAULT;
        // 100 records, all at once: 1 round of up to 10 s, plus 10 s for the writes.
        assert_eq!(timeout(&default), Duration::from_secs(20));
        let sixteen = StreamSettings {
            concurrency: 16,
            ..default.clone()
        };
        // 16 at a time: 7 rounds.
        assert_eq!(timeout(&sixteen), Duration::from_secs(80));
        // Lambda's ceiling of 15 minutes caps it.
        let slow = StreamSettings {
            record_timeout: Duration::from_secs(600),
            ..sixteen
        };
        assert_eq!(timeout(&slow), Duration::from_secs(900));
    }
}
