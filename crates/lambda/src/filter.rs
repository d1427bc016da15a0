//! Lambda event filtering (`FilterCriteria` patterns) evaluated here, so that the local
//! runtime's event source mappings let through exactly the records the stack's would.
//!
//! The subset the stack's patterns use: nested objects, and at each leaf a list of rules
//! of which one must match: an exact string, number, boolean or `null`, or
//! `{"exists": true|false}`. A pattern with any other operator (`prefix`, `numeric`,
//! `anything-but`, ...) is refused when parsed, rather than matched wrongly.
//!
//! Semantics, as Lambda's filter rule syntax documents them: every key of the pattern must
//! match (AND), any rule of a leaf list may (OR); a key missing from the event matches only
//! `{"exists": false}`; `{"exists": true}` matches a leaf value only (not an object, as
//! `exists` applies to leaf nodes); an array in the event matches when one of its
//! elements does; numbers compare by value (`5` matches `5.0`, not `"5"`).

use serde_json::{Map, Value};

/// A parsed filter pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern(Node);

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Fields(Vec<(String, Node)>),
    /// One of these must match the value.
    Rules(Vec<Rule>),
}

#[derive(Debug, Clone, PartialEq)]
enum Rule {
    Equals(Value),
    Exists(bool),
}

/// A pattern this matcher cannot evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("the filter pattern is not JSON: {0}")]
    NotJson(String),
    #[error(
        "the filter pattern has {found} at `{path}` where an object or a list of rules \
         belongs"
    )]
    Shape { path: String, found: String },
    #[error(
        "the filter pattern's rule {rule} at `{path}` is not supported here (only exact \
         values and {{\"exists\": true|false}}): extend crates/lambda/src/filter.rs first"
    )]
    Unsupported { path: String, rule: String },
}

impl Pattern {
    /// Parses a pattern as the event source mapping's `Filters[].Pattern` holds it.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| PatternError::NotJson(e.to_string()))?;
        match value {
            Value::Object(fields) => Ok(Self(fields_node(&fields, "")?)),
            other => Err(PatternError::Shape {
                path: String::new(),
                found: other.to_string(),
            }),
        }
    }

    /// Whether `event` (one record as the function would get it) passes the pattern.
    pub fn matches(&self, event: &Value) -> bool {
        self.0.matches(Some(event))
    }
}

fn fields_node(fields: &Map<String, Value>, path: &str) -> Result<Node, PatternError> {
    fields
        .iter()
        .map(|(key, value)| {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let node = match value {
                Value::Object(inner) => fields_node(inner, &path)?,
                Value::Array(rules) => Node::Rules(
                    rules
                        .iter()
                        .map(|rule| parse_rule(rule, &path))
                        .collect::<Result<_, _>>()?,
                ),
                other => {
                    return Err(PatternError::Shape {
                        path,
                        found: other.to_string(),
                    });
                }
            };
            Ok((key.clone(), node))
        })
        .collect::<Result<_, _>>()
        .map(Node::Fields)
}

fn parse_rule(rule: &Value, path: &str) -> Result<Rule, PatternError> {
    match rule {
        Value::Object(operator) => match operator.get("exists") {
            Some(Value::Bool(exists)) if operator.len() == 1 => Ok(Rule::Exists(*exists)),
            _ => Err(PatternError::Unsupported {
                path: path.to_owned(),
                rule: rule.to_string(),
            }),
        },
        Value::Array(_) => Err(PatternError::Shape {
            path: path.to_owned(),
            found: rule.to_string(),
        }),
        exact => Ok(Rule::Equals(exact.clone())),
    }
}

impl Node {
    fn matches(&self, value: Option<&Value>) -> bool {
        match self {
            Node::Fields(fields) => fields.iter().all(|(key, node)| {
                node.matches(value.and_then(Value::as_object).and_then(|v| v.get(key)))
            }),
            Node::Rules(rules) => rules.iter().any(|rule| rule.matches(value)),
        }
    }
}

impl Rule {
    fn matches(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Rule::Exists(exists), None) => !exists,
            (Rule::Exists(exists), Some(Value::Array(items))) => {
                *exists == items.iter().any(is_leaf)
            }
            (Rule::Exists(exists), Some(value)) => *exists == is_leaf(value),
            (Rule::Equals(_), None) => false,
            (Rule::Equals(expected), Some(Value::Array(items))) => {
                items.iter().any(|item| equals(expected, item))
            }
            (Rule::Equals(expected), Some(value)) => equals(expected, value),
        }
    }
}

fn is_leaf(value: &Value) -> bool {
    !matches!(value, Value::Object(_) | Value::Array(_))
}

fn equals(expected: &Value, value: &Value) -> bool {
    match (expected, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(pattern: Value, cases: &[(Value, bool)]) {
        let parsed = Pattern::parse(&pattern.to_string()).unwrap();
        for (event, expected) in cases {
            assert_eq!(
                parsed.matches(event),
                *expected,
                "{pattern} against {event}"
            );
        }
    }

    /// The rows of Lambda's filter rule syntax table that this subset covers.
    #[test]
    fn the_documented_comparison_operators() {
        // Null, Empty, Equals.
        check(
            json!({ "UserID": [null] }),
            &[
                (json!({ "UserID": null }), true),
                (json!({ "UserID": "" }), false),
                (json!({}), false),
            ],
        );
        check(
            json!({ "LastName": [""] }),
            &[
                (json!({ "LastName": "" }), true),
                (json!({ "LastName": null }), false),
            ],
        );
        check(
            json!({ "Name": ["Alice"] }),
            &[
                (json!({ "Name": "Alice" }), true),
                (json!({ "Name": "alice" }), false),
                (json!({ "Name": ["Bob", "Alice"] }), true),
            ],
        );
        // And (keys), Or (values of one key).
        check(
            json!({ "Location": ["New York"], "Day": ["Monday"] }),
            &[
                (json!({ "Location": "New York", "Day": "Monday" }), true),
                (json!({ "Location": "New York", "Day": "Tuesday" }), false),
                (json!({ "Location": "New York" }), false),
            ],
        );
        check(
            json!({ "PaymentType": ["Credit", "Debit"] }),
            &[
                (json!({ "PaymentType": "Debit" }), true),
                (json!({ "PaymentType": "Cash" }), false),
            ],
        );
        // Numbers compare by value, never with strings.
        check(
            json!({ "Quantity": [5] }),
            &[
                (json!({ "Quantity": 5 }), true),
                (json!({ "Quantity": 5.0 }), true),
                (json!({ "Quantity": "5" }), false),
            ],
        );
        check(
            json!({ "Done": [true] }),
            &[
                (json!({ "Done": true }), true),
                (json!({ "Done": "true" }), false),
            ],
        );
    }

    #[test]
    fn exists_and_does_not_exist_apply_to_leaves() {
        check(
            json!({ "ProductName": [{ "exists": true }] }),
            &[
                (json!({ "ProductName": "Lamp" }), true),
                (json!({ "ProductName": "" }), true),
                (json!({ "Other": "Lamp" }), false),
                // Not a leaf: `exists` matches leaf nodes only.
                (json!({ "ProductName": { "S": "Lamp" } }), false),
            ],
        );
        check(
            json!({ "ProductName": [{ "exists": false }] }),
            &[
                (json!({ "ProductName": "Lamp" }), false),
                (json!({ "Other": "Lamp" }), true),
            ],
        );
        // Nested: a missing parent makes the leaf missing.
        check(
            json!({ "customer": { "email": [{ "exists": false }] } }),
            &[
                (json!({ "customer": { "phone": "555" } }), true),
                (json!({}), true),
                (json!({ "customer": { "email": "a@example.com" } }), false),
            ],
        );
    }

    /// The DynamoDB examples of Lambda's documentation: filters on the `dynamodb` key of
    /// the record, an attribute's value under its type.
    #[test]
    fn dynamodb_records() {
        let record = json!({
            "eventID": "1",
            "eventName": "MODIFY",
            "eventVersion": "1.0",
            "dynamodb": {
                "ApproximateCreationDateTime": "1678831218.0",
                "Keys": { "CustomerName": { "S": "AnyCompany Industries" } },
                "NewImage": {
                    "AccountManager": { "S": "Pat Candella" },
                    "PaymentTerms": { "S": "60 days" },
                    "CustomerName": { "S": "AnyCompany Industries" }
                },
                "SequenceNumber": "111",
                "SizeBytes": 26,
                "StreamViewType": "NEW_IMAGE"
            }
        });
        let cases = [
            (
                json!({ "dynamodb": { "Keys": { "CustomerName": { "S": ["AnyCompany Industries"] } } } }),
                true,
            ),
            (
                json!({ "dynamodb": { "NewImage": { "AccountManager": { "S": ["Pat Candella"] } } } }),
                true,
            ),
            (
                json!({ "dynamodb": { "NewImage": { "AccountManager": { "S": [{ "exists": true }] } } } }),
                true,
            ),
            (
                json!({ "dynamodb": { "NewImage": { "Address": { "S": [{ "exists": false }] } } } }),
                true,
            ),
            (
                json!({ "dynamodb": { "NewImage": { "Address": { "S": [{ "exists": true }] } } } }),
                false,
            ),
            // The attribute exists, but as another type.
            (
                json!({ "dynamodb": { "NewImage": { "PaymentTerms": { "N": [{ "exists": true }] } } } }),
                false,
            ),
            (json!({ "eventName": ["INSERT", "MODIFY"] }), true),
            (json!({ "eventName": ["REMOVE"] }), false),
        ];
        for (pattern, expected) in cases {
            check(pattern, &[(record.clone(), expected)]);
        }
    }

    #[test]
    fn operators_outside_the_subset_are_refused() {
        for (pattern, wanted) in [
            (json!({ "a": [{ "prefix": "x" }] }), "not supported"),
            (json!({ "a": [{ "numeric": [">", 1] }] }), "not supported"),
            (json!({ "a": [{ "anything-but": ["x"] }] }), "not supported"),
            (json!({ "a": [{ "exists": "yes" }] }), "not supported"),
            (json!({ "a": "x" }), "where an object or a list"),
            (json!(["a"]), "where an object or a list"),
        ] {
            let error = Pattern::parse(&pattern.to_string()).unwrap_err();
            assert!(error.to_string().contains(wanted), "{pattern}: {error}");
        }
        assert!(matches!(Pattern::parse("{"), Err(PatternError::NotJson(_))));
    }

    #[test]
    fn the_notifiers_pattern_parses() {
        Pattern::parse(&crate::item::notifier_filter_pattern()).unwrap();
    }
}
