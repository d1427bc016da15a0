//! What the stream function measures, by name. The function writes these metrics as
//! CloudWatch Embedded Metric Format lines (`storefirst-lambda`), the stack's dashboard
//! graphs them (`storefirst-infra`): both read the names here.

/// The CloudWatch namespace of the function's own metrics.
pub const NAMESPACE: &str = "storefirst";
/// The one dimension, named as AWS/Lambda names it: the function's name.
pub const DIMENSION: &str = "FunctionName";

/// Records whose item the batch recorded `succeeded` (Count).
pub const SUCCEEDED: &str = "RecordsSucceeded";
/// Records whose item the batch recorded `failed`: the processor rejected it (Count).
pub const REJECTED: &str = "RecordsRejected";
/// Records the function handed back for another delivery (`batchItemFailures`, Count).
pub const RETRIED: &str = "RecordsRetried";
/// Records dropped because they cannot be decoded (Count).
pub const UNDECODABLE: &str = "RecordsUndecodable";
/// From the item's `created_at` to its outcome's write, per record (Milliseconds).
pub const OUTCOME_LATENCY: &str = "OutcomeLatency";

/// The counts, in the order a dashboard lists them.
pub const COUNTS: [&str; 4] = [SUCCEEDED, REJECTED, RETRIED, UNDECODABLE];
