//! One request's path through a deployed stack: the API's access log line and the stream
//! processor's lines about its item, found by one CloudWatch Logs Insights query. The item
//! records API Gateway's extended request id and X-Ray trace id (`request_id`,
//! `trace_id`), and the processor logs each record in a span that carries them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::{QueryStatus, ResultField};
use storefirst_infra::stack::{
    api::{ACCESS_LOG_REQUEST_ID, ACCESS_LOG_TRACE_ID, ACCESS_LOGS},
    processor::PROCESSOR_LOGS,
};

use crate::{Aws, Console, Error, aws::failed};

/// The most rows a Logs Insights query returns.
const LIMIT: u32 = 10_000;
/// How long a query may run before it is stopped: a request's lines are few, a longer run
/// means a window too wide for the groups' size.
const QUERY_DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_secs(1);

/// What to look for and where.
#[derive(Debug, Clone)]
pub struct LogSearch {
    /// A request id as the API answered it (POST's `id`, PUT's path), API Gateway's
    /// extended request id, or an X-Ray trace id.
    pub id: String,
    /// How far back the query looks.
    pub window: Duration,
}

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Api,
    Processor,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Processor => "processor",
        }
    }
}

/// One log line, as Logs Insights returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub timestamp: String,
    pub source: Source,
    pub message: String,
}

/// The stack's log groups, the query run over them, and what it found, oldest first.
#[derive(Debug, Clone)]
pub struct RequestLogs {
    pub access_logs: String,
    pub processor_logs: String,
    pub query: String,
    pub lines: Vec<LogLine>,
}

/// The Logs Insights query for `id` (see [`LogSearch::id`]), or why `id` cannot be one.
///
/// It matches the access log's ids and path, and the processor's record span (`span.*`,
/// the fields `storefirst_lambda::logging` writes) and event fields (`fields.id`).
pub fn query(id: &str) -> Result<String, Error> {
    // Request ids, base64 and trace ids use only these: nothing can break out of a string.
    let valid = !id.is_empty()
        && id.len() <= 256
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+/=".contains(c));
    if !valid {
        return Err(Error::NotARequestId(id.to_owned()));
    }
    // POST's id is the extended request id made URL-safe; the access log has it as is.
    let mut values = vec![id.to_owned()];
    let url_safe = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
    // No base64 text leaves one character over a multiple of four.
    if url_safe && id.len() % 4 != 1 && standard_base64(id) != id {
        values.push(standard_base64(id));
    }
    let set = values
        .iter()
        .map(|value| format!("\"{value}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let fields = [
        ACCESS_LOG_REQUEST_ID,
        ACCESS_LOG_TRACE_ID,
        "span.id",
        "span.request_id",
        "span.trace_id",
        "fields.id",
    ];
    let mut filters: Vec<String> = fields
        .iter()
        .map(|field| format!("{field} in [{set}]"))
        .collect();
    // GETs and PUTs of the id: the access log's path ends with it.
    let escaped: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect();
    filters.push(format!("path like /\\/requests\\/{escaped}$/"));
    Ok(format!(
        "fields @timestamp, @log, @message\n| filter {}\n| sort @timestamp asc\n| limit {LIMIT}",
        filters.join("\n    or ")
    ))
}

/// `id`, URL-safe base64 without padding, as standard base64.
fn standard_base64(id: &str) -> String {
    let mut text: String = id
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !text.len().is_multiple_of(4) {
        text.push('=');
    }
    text
}

/// The stack's access log group and the function's log group, from its resources.
pub async fn log_groups(aws: &Aws, stack: &str) -> Result<(String, String), Error> {
    if crate::stack::describe(aws, stack).await?.is_none() {
        return Err(Error::NoStack(stack.to_owned()));
    }
    let resources = aws
        .cloudformation
        .describe_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .map_err(failed("CloudFormation DescribeStackResources"))?;
    let group = |logical_id: &'static str| {
        resources
            .stack_resources()
            .iter()
            .find(|resource| resource.logical_resource_id() == Some(logical_id))
            .and_then(|resource| resource.physical_resource_id())
            .map(str::to_owned)
            .ok_or_else(|| Error::NoLogGroup {
                stack: stack.to_owned(),
                logical_id,
            })
    };
    Ok((group(ACCESS_LOGS)?, group(PROCESSOR_LOGS)?))
}

/// Runs the query for `search` over the stack's log groups and returns its lines, oldest
/// first. The query is on the console first, for the Logs Insights page.
pub async fn request_logs(
    aws: &Aws,
    stack: &str,
    search: &LogSearch,
    console: &Console,
) -> Result<RequestLogs, Error> {
    let query = query(&search.id)?;
    let (access_logs, processor_logs) = log_groups(aws, stack).await?;
    console.say(format!(
        "Logs Insights query over {access_logs} and {processor_logs}:\n{query}\n"
    ));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let start = now.saturating_sub(search.window);
    let started = aws
        .logs
        .start_query()
        .log_group_names(&access_logs)
        .log_group_names(&processor_logs)
        .start_time(start.as_secs() as i64)
        .end_time(now.as_secs() as i64)
        .query_string(&query)
        .limit(LIMIT as i32)
        .send()
        .await
        .map_err(failed("CloudWatch Logs StartQuery"))?;
    let id = started.query_id().unwrap_or_default().to_owned();
    let deadline = tokio::time::Instant::now() + QUERY_DEADLINE;
    console.status("running the query");
    let rows = loop {
        let results = aws
            .logs
            .get_query_results()
            .query_id(&id)
            .send()
            .await
            .map_err(failed("CloudWatch Logs GetQueryResults"))?;
        match results.status() {
            Some(QueryStatus::Complete) => break results.results().to_vec(),
            Some(QueryStatus::Running | QueryStatus::Scheduled) | None => {}
            Some(other) => {
                console.clear_status();
                return Err(Error::QueryFailed {
                    status: other.as_str().to_owned(),
                });
            }
        }
        if tokio::time::Instant::now() >= deadline {
            console.clear_status();
            // Best effort: a query left running ends by itself at Logs Insights' limit.
            let _ = aws.logs.stop_query().query_id(&id).send().await;
            return Err(Error::QueryTimedOut {
                seconds: QUERY_DEADLINE.as_secs(),
            });
        }
        tokio::time::sleep(POLL).await;
    };
    console.clear_status();
    let lines = rows
        .iter()
        .map(|row| {
            let field = |name: &str| {
                row.iter()
                    .find(|field| field.field() == Some(name))
                    .and_then(ResultField::value)
                    .unwrap_or_default()
                    .to_owned()
            };
            // `@log` is ACCOUNT:GROUP on AWS; a group name has no colon.
            let log = field("@log");
            let group = log.rsplit(':').next().unwrap_or_default();
            LogLine {
                timestamp: field("@timestamp"),
                source: if group == access_logs {
                    Source::Api
                } else {
                    Source::Processor
                },
                message: field("@message").trim_end().to_owned(),
            }
        })
        .collect();
    Ok(RequestLogs {
        access_logs,
        processor_logs,
        query,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_matches_the_id_in_every_form_the_logs_hold_it() {
        let query = query("BQGo-jGV_SIAMF3").unwrap();
        expect_test::expect![[r#"
            fields @timestamp, @log, @message
            | filter extendedRequestId in ["BQGo-jGV_SIAMF3", "BQGo+jGV/SIAMF3="]
                or xrayTraceId in ["BQGo-jGV_SIAMF3", "BQGo+jGV/SIAMF3="]
                or span.id in ["BQGo-jGV_SIAMF3", "BQGo+jGV/SIAMF3="]
                or span.request_id in ["BQGo-jGV_SIAMF3", "BQGo+jGV/SIAMF3="]
                or span.trace_id in ["BQGo-jGV_SIAMF3", "BQGo+jGV/SIAMF3="]
                or fields.id in ["BQGo-jGV_SIAMF3", "BQGo+jGV/SIAMF3="]
                or path like /\/requests\/BQGo\-jGV\_SIAMF3$/
            | sort @timestamp asc
            | limit 10000"#]]
        .assert_eq(&query);
    }

    #[test]
    fn an_id_already_in_standard_base64_is_looked_for_once() {
        let query = query("order.1").unwrap();
        assert!(query.contains(r#"span.id in ["order.1"]"#), "{query}");
        assert!(query.contains(r"/\/requests\/order\.1$/"), "{query}");
    }

    #[test]
    fn an_id_that_could_break_the_query_is_refused() {
        for id in ["", "a\" or 1=1", "a b", "a|b", "x\\"] {
            let error = query(id).expect_err(id);
            assert!(
                error.to_string().contains("extended request id"),
                "{id}: {error}"
            );
        }
    }
}
