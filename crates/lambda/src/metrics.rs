//! The function's metrics as CloudWatch Embedded Metric Format (EMF) lines: JSON objects
//! on stdout that CloudWatch Logs turns into metrics, with no call to CloudWatch. The
//! names are `storefirst_domain::metrics`, which the stack's dashboard reads too.

use serde_json::{Map, Value, json};
use storefirst_domain::metrics::{
    DIMENSION, NAMESPACE, OUTCOME_LATENCY, REJECTED, RETRIED, SUCCEEDED, UNDECODABLE,
};

/// The EMF specification's limit on the values of one metric in one document.
pub const MAX_VALUES: usize = 100;

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchMetrics {
    pub succeeded: usize,
    pub rejected: usize,
    pub retried: usize,
    pub undecodable: usize,
    /// Milliseconds from each item's `created_at` to its outcome.
    pub latencies: Vec<i64>,
}

impl BatchMetrics {
    /// The EMF documents for `function` at `timestamp` (epoch ms), one JSON object per
    /// line: the counts with the first [`MAX_VALUES`] latencies, then the rest of them in
    /// documents of their own.
    pub fn emf(&self, function: &str, timestamp: i64) -> Vec<String> {
        let mut chunks = self.latencies.chunks(MAX_VALUES);
        let counts = [
            (SUCCEEDED, self.succeeded),
            (REJECTED, self.rejected),
            (RETRIED, self.retried),
            (UNDECODABLE, self.undecodable),
        ];
        let mut first: Vec<(&str, &str, Value)> = counts
            .iter()
            .map(|(name, n)| (*name, "Count", json!(n)))
            .collect();
        if let Some(latencies) = chunks.next() {
            first.push((OUTCOME_LATENCY, "Milliseconds", json!(latencies)));
        }
        std::iter::once(first)
            .chain(
                chunks.map(|latencies| vec![(OUTCOME_LATENCY, "Milliseconds", json!(latencies))]),
            )
            .map(|metrics| document(function, timestamp, &metrics))
            .collect()
    }
}

fn document(function: &str, timestamp: i64, metrics: &[(&str, &str, Value)]) -> String {
    let directives: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({ "Name": name, "Unit": unit }))
        .collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DIMENSION]],
                "Metrics": directives,
            }],
        }),
    );
    root.insert(DIMENSION.into(), json!(function));
    for (name, _, value) in metrics {
        root.insert((*name).into(), value.clone());
    }
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Value {
        assert!(!line.contains('\n'), "one line: {line}");
        serde_json::from_str(line).unwrap()
    }

    /// The specification's rules: `_aws` with a millisecond `Timestamp` and one directive
    /// whose every dimension and metric is a member of the root, a metric's value a number
    /// or an array of at most 100 numbers, units CloudWatch knows.
    fn check(document: &Value) {
        let aws = &document["_aws"];
        assert!(aws["Timestamp"].is_i64(), "{document}");
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        let directive = &directives[0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        for set in directive["Dimensions"].as_array().unwrap() {
            for dimension in set.as_array().unwrap() {
                let name = dimension.as_str().unwrap();
                assert!(document[name].is_string(), "{name} is a string member");
            }
        }
        for metric in directive["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(["Count", "Milliseconds"].contains(&metric["Unit"].as_str().unwrap()));
            match &document[name] {
                Value::Number(_) => {}
                Value::Array(values) => {
                    assert!((1..=MAX_VALUES).contains(&values.len()), "{name}");
                    assert!(values.iter().all(Value::is_number), "{name}");
                }
                other => panic!("{name} is {other}"),
            }
        }
    }

    #[test]
    fn a_batch_is_one_document_with_its_counts_and_latencies() {
        let metrics = BatchMetrics {
            succeeded: 3,
            rejected: 1,
            retried: 2,
            undecodable: 0,
            latencies: vec![120, 80, 95, 101],
        };
        let lines = metrics.emf("stack-StreamProcessor-abc", 1_700_000_000_000);
        assert_eq!(lines.len(), 1);
        let document = parse(&lines[0]);
        check(&document);
        assert_eq!(
            document,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "storefirst",
                        "Dimensions": [["FunctionName"]],
                        "Metrics": [
                            { "Name": "RecordsSucceeded", "Unit": "Count" },
                            { "Name": "RecordsRejected", "Unit": "Count" },
                            { "Name": "RecordsRetried", "Unit": "Count" },
                            { "Name": "RecordsUndecodable", "Unit": "Count" },
                            { "Name": "OutcomeLatency", "Unit": "Milliseconds" },
                        ],
                    }],
                },
                "FunctionName": "stack-StreamProcessor-abc",
                "RecordsSucceeded": 3,
                "RecordsRejected": 1,
                "RecordsRetried": 2,
                "RecordsUndecodable": 0,
                "OutcomeLatency": [120, 80, 95, 101],
            })
        );
    }

    #[test]
    fn more_than_a_hundred_latencies_take_more_documents() {
        let metrics = BatchMetrics {
            succeeded: 250,
            latencies: (0..250).collect(),
            ..BatchMetrics::default()
        };
        let lines = metrics.emf("f", 1);
        let documents: Vec<Value> = lines.iter().map(|line| parse(line)).collect();
        documents.iter().for_each(check);
        let sizes: Vec<usize> = documents
            .iter()
            .map(|d| d[OUTCOME_LATENCY].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert_eq!(documents[0][SUCCEEDED], 250, "the counts once");
        assert!(documents[1].get(SUCCEEDED).is_none());
        assert!(documents[2].get(SUCCEEDED).is_none());
    }

    #[test]
    fn a_batch_without_outcomes_has_counts_only() {
        let lines = BatchMetrics {
            retried: 5,
            ..BatchMetrics::default()
        }
        .emf("f", 1);
        let document = parse(&lines[0]);
        check(&document);
        assert_eq!(lines.len(), 1);
        assert!(document.get(OUTCOME_LATENCY).is_none());
        assert_eq!(document[RETRIED], 5);
    }
}
