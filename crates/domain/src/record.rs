//! Statuses, change-stream records and the clock helpers that date them.

use std::{fmt, str::FromStr};

use crate::RequestId;

/// Where a request is in its life. Stored as the lowercase name in both runtimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}: expected pending, succeeded or failed")]
pub struct UnknownStatus(pub String);

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Status::Pending),
            "succeeded" => Ok(Status::Succeeded),
            "failed" => Ok(Status::Failed),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

/// The kind of change a stream record describes, named as DynamoDB Streams names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeEvent {
    Insert,
    Modify,
    Remove,
}

impl ChangeEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeEvent::Insert => "INSERT",
            ChangeEvent::Modify => "MODIFY",
            ChangeEvent::Remove => "REMOVE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INSERT" => Some(ChangeEvent::Insert),
            "MODIFY" => Some(ChangeEvent::Modify),
            "REMOVE" => Some(ChangeEvent::Remove),
            _ => None,
        }
    }
}

/// One change-stream record, as much of it as processing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// Identifies the record in `batchItemFailures`.
    pub sequence_number: String,
    pub event: ChangeEvent,
    pub id: RequestId,
    /// The new image's `request` attribute; absent on REMOVE.
    pub body: Option<String>,
    /// The ids the API recorded on the item, which every log line about the record carries.
    pub correlation: Correlation,
}

/// The API request that stored an item, as the item records it, so that one log query
/// follows a request from the API to its outcome. Empty where the runtime records none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Correlation {
    /// API Gateway's `$context.extendedRequestId`.
    pub request_id: Option<String>,
    /// The X-Ray trace id, when the API traced the request.
    pub trace_id: Option<String>,
}

/// Milliseconds since the Unix epoch: the unit of `created_at` and `updated_at`.
pub fn now_millis() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    millis(since_epoch)
}

/// `duration` in whole milliseconds, saturating (the unit of the timestamps).
pub fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
