//! The function's log lines: JSON, one per event, with the spans it is in: `spans` lists
//! them all, outermost first (the Lambda invocation's, with its `requestId`), and `span`
//! repeats the innermost. Within a record that is the record's span (`process_batch`
//! opens it) with its `id` and the API's `request_id` and `trace_id`, so one Logs Insights
//! query finds a request's lines beside the API's access log line (`span.request_id`).

use tracing::Subscriber;
use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

/// The subscriber `main` installs with stdout (which Lambda sends to CloudWatch Logs as
/// is); tests give it a buffer.
pub fn json_lines<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(true)
        .with_target(false)
        .with_writer(writer)
        .finish()
}
