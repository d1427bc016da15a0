//! The stream settings: the event source mapping's knobs, defined once for both runtimes
//! and the stack.

use std::time::Duration;

use crate::ChangeEvent;

/// How the change stream drives the processor. Defined once: the CloudFormation event
/// source mapping and the local poller both read [`StreamSettings::DEFAULT`], so the two
/// runtimes cannot drift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// Most records handed to one invocation (`BatchSize`).
    pub batch_size: u32,
    /// How long to gather records before invoking (`MaximumBatchingWindowInSeconds`).
    pub batching_window: Duration,
    /// Retries of a failing batch before it goes to the dead letters (`MaximumRetryAttempts`).
    pub maximum_retry_attempts: u32,
    /// Split a failing batch in two and retry the halves (`BisectBatchOnFunctionError`).
    pub bisect_batch_on_function_error: bool,
    /// Older records are sent to the dead letters unprocessed (`MaximumRecordAgeInSeconds`).
    pub maximum_record_age: Duration,
    /// The events that reach the processor (`FilterCriteria` on `eventName`).
    pub events: &'static [ChangeEvent],
    /// How long a succeeded item is kept before its TTL expires it.
    pub succeeded_retention: Duration,
    /// A processor call running longer than this counts as a transient failure.
    pub record_timeout: Duration,
    /// Records of one batch processed at the same time.
    pub concurrency: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream settings: {0}")]
pub struct SettingsError(String);

impl StreamSettings {
    pub const DEFAULT: StreamSettings = StreamSettings {
        batch_size: 100,
        batching_window: Duration::ZERO,
        maximum_retry_attempts: 3,
        bisect_batch_on_function_error: true,
        maximum_record_age: Duration::from_secs(6 * 60 * 60),
        events: &[ChangeEvent::Insert],
        succeeded_retention: Duration::from_secs(24 * 60 * 60),
        record_timeout: Duration::from_secs(10),
        // The whole batch at once: measured with `cargo xtask bench`, 16 let the backlog
        // grow without bound at the maximum ingest rate, 100 keeps it bounded for ~6% less
        // ingest. Lower it when the processor calls a dependency that cannot take that many.
        concurrency: 100,
    };

    /// Checks the limits AWS enforces on an event source mapping, so a local setting that
    /// AWS would refuse fails here first.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let fail = |what: &str| Err(SettingsError(what.to_owned()));
        if !(1..=10_000).contains(&self.batch_size) {
            return fail("batch_size must be 1 to 10000");
        }
        if self.batching_window > Duration::from_secs(300) {
            return fail("batching_window must be at most 300 s");
        }
        if self.maximum_retry_attempts > 10_000 {
            return fail("maximum_retry_attempts must be at most 10000");
        }
        if self.maximum_record_age < Duration::from_secs(60)
            || self.maximum_record_age > Duration::from_secs(604_800)
        {
            return fail("maximum_record_age must be 60 s to 7 days");
        }
        if self.concurrency == 0 {
            return fail("concurrency must be at least 1");
        }
        if self.record_timeout.is_zero() {
            return fail("record_timeout must be above zero");
        }
        if self.events.is_empty() {
            return fail("events must name at least one event");
        }
        Ok(())
    }

    pub fn accepts(&self, event: ChangeEvent) -> bool {
        self.events.contains(&event)
    }

    /// The event source mapping's filter pattern for [`Self::events`].
    pub fn filter_pattern(&self) -> String {
        let names: Vec<&str> = self.events.iter().map(|e| e.as_str()).collect();
        serde_json::json!({ "eventName": names }).to_string()
    }
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_inserts_only() {
        let settings = StreamSettings::DEFAULT;
        assert_eq!(settings.validate(), Ok(()));
        assert_eq!(settings.filter_pattern(), r#"{"eventName":["INSERT"]}"#);
        assert!(settings.accepts(ChangeEvent::Insert));
        assert!(!settings.accepts(ChangeEvent::Modify));
        assert!(!settings.accepts(ChangeEvent::Remove));
    }

    #[test]
    fn limits() {
        let cases: Vec<(StreamSettings, &str)> = vec![
            (
                StreamSettings {
                    batch_size: 0,
                    ..StreamSettings::DEFAULT
                },
                "batch_size",
            ),
            (
                StreamSettings {
                    batch_size: 10_001,
                    ..StreamSettings::DEFAULT
                },
                "batch_size",
            ),
            (
                StreamSettings {
                    batching_window: Duration::from_secs(301),
                    ..StreamSettings::DEFAULT
                },
                "batching_window",
            ),
            (
                StreamSettings {
                    maximum_record_age: Duration::from_secs(59),
                    ..StreamSettings::DEFAULT
                },
                "maximum_record_age",
            ),
            (
                StreamSettings {
                    concurrency: 0,
                    ..StreamSettings::DEFAULT
                },
                "concurrency",
            ),
            (
                StreamSettings {
                    events: &[],
                    ..StreamSettings::DEFAULT
                },
                "events",
            ),
        ];
        for (settings, field) in cases {
            let err = settings.validate().expect_err(field);
            assert!(err.to_string().contains(field), "{err}");
        }
    }
}
