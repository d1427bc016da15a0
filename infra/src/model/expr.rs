//! Values that CloudFormation resolves at deploy time: literals and intrinsic functions.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer, ser::SerializeMap};

/// A string-valued property: a literal or an intrinsic function. Lists appear where a
/// property takes a list that an `Fn::If` may replace as a whole.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    List(Vec<Expr>),
    /// `{"Ref": id}`: a resource's physical id, a parameter's value, or a pseudo parameter.
    Ref(String),
    /// `{"Fn::GetAtt": [id, attribute]}`.
    GetAtt(String, String),
    /// `{"Fn::Sub": text}` or, with variables, `{"Fn::Sub": [text, {name: value}]}`.
    Sub(String, BTreeMap<String, Expr>),
    /// `{"Fn::Join": [separator, parts]}`.
    Join(String, Vec<Expr>),
    /// `{"Fn::If": [condition, then, else]}`.
    If(String, Box<Expr>, Box<Expr>),
}

/// The pseudo parameters a template may `Ref` without declaring them.
pub const PSEUDO_PARAMETERS: &[&str] = &[
    "AWS::AccountId",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
];

impl Expr {
    pub fn sub(text: impl Into<String>) -> Self {
        Expr::Sub(text.into(), BTreeMap::new())
    }

    pub fn sub_with<'a>(
        text: impl Into<String>,
        variables: impl IntoIterator<Item = (&'a str, Expr)>,
    ) -> Self {
        let variables = variables
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        Expr::Sub(text.into(), variables)
    }

    pub fn no_value() -> Self {
        Expr::Ref("AWS::NoValue".into())
    }

    pub fn if_(condition: &str, then: Expr, otherwise: Expr) -> Self {
        Expr::If(condition.into(), Box::new(then), Box::new(otherwise))
    }

    /// An ARN in the stack's partition, region and account: `arn:${AWS::Partition}:...`.
    pub fn arn(service: &str, resource: &str) -> Self {
        Expr::sub(format!(
            "arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"
        ))
    }
}

impl From<&str> for Expr {
    fn from(value: &str) -> Self {
        Expr::Str(value.to_owned())
    }
}

impl From<String> for Expr {
    fn from(value: String) -> Self {
        Expr::Str(value)
    }
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn single<S: Serializer, V: Serialize + ?Sized>(
            serializer: S,
            key: &str,
            value: &V,
        ) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(key, value)?;
            map.end()
        }
        match self {
            Expr::Str(text) => serializer.serialize_str(text),
            Expr::List(items) => items.serialize(serializer),
            Expr::Ref(id) => single(serializer, "Ref", id),
            Expr::GetAtt(id, attribute) => single(serializer, "Fn::GetAtt", &[id, attribute]),
            Expr::Sub(text, variables) if variables.is_empty() => {
                single(serializer, "Fn::Sub", text)
            }
            Expr::Sub(text, variables) => single(serializer, "Fn::Sub", &(text, variables)),
            Expr::Join(separator, parts) => single(serializer, "Fn::Join", &(separator, parts)),
            Expr::If(condition, then, otherwise) => {
                single(serializer, "Fn::If", &(condition, then, otherwise))
            }
        }
    }
}

/// A condition function, for the template's `Conditions`.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Equals(Expr, Expr),
    Not(Box<Condition>),
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            Condition::Equals(a, b) => map.serialize_entry("Fn::Equals", &(a, b))?,
            Condition::Not(inner) => map.serialize_entry("Fn::Not", &[inner])?,
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(expr: Expr, expected: serde_json::Value) {
        assert_eq!(serde_json::to_value(&expr).unwrap(), expected);
    }

    #[test]
    fn intrinsic_functions() {
        check("text".into(), json!("text"));
        check(Expr::Ref("Table".into()), json!({"Ref": "Table"}));
        check(
            Expr::GetAtt("Table".into(), "Arn".into()),
            json!({"Fn::GetAtt": ["Table", "Arn"]}),
        );
        check(Expr::sub("a-${B}"), json!({"Fn::Sub": "a-${B}"}));
        check(
            Expr::sub_with("${X}", [("X", Expr::Ref("Y".into()))]),
            json!({"Fn::Sub": ["${X}", {"X": {"Ref": "Y"}}]}),
        );
        check(
            Expr::Join(",".into(), vec!["a".into(), Expr::Ref("B".into())]),
            json!({"Fn::Join": [",", ["a", {"Ref": "B"}]]}),
        );
        check(
            Expr::if_(
                "On",
                Expr::List(vec![Expr::Ref("T".into())]),
                Expr::no_value(),
            ),
            json!({"Fn::If": ["On", [{"Ref": "T"}], {"Ref": "AWS::NoValue"}]}),
        );
        check(
            Expr::arn("sqs", "q"),
            json!({"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:q"}),
        );
        let not = Condition::Not(Box::new(Condition::Equals(
            Expr::Ref("P".into()),
            "".into(),
        )));
        assert_eq!(
            serde_json::to_value(not).unwrap(),
            json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "P"}, ""]}]})
        );
    }
}
