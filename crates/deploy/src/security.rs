//! Every IAM change between the deployed template and the synthesized one, and whether it
//! broadens permissions: statements added or removed in roles (trust and inline policies),
//! `AWS::IAM::Policy` and `ManagedPolicy`, managed policy attachments, bucket, queue and
//! topic policies and Lambda permissions; and changes of the API's authorization. Read from
//! the templates as written (intrinsic functions shown as `${Id}`, `${Id.Attr}`), so it
//! works before any change set exists.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    str::FromStr,
};

use serde_json::Value;

/// When a deploy stops to ask (`--require-approval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequireApproval {
    /// Never: the security changes are shown, and the deploy goes on.
    Never,
    /// When a security change broadens permissions ([`SecurityDiff::broadening`]).
    #[default]
    Broadening,
    /// When there is any security change.
    AnyChange,
}

impl FromStr for RequireApproval {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "never" => Ok(Self::Never),
            "broadening" => Ok(Self::Broadening),
            "any-change" => Ok(Self::AnyChange),
            other => Err(format!(
                "{other:?} is not one of never, broadening, any-change"
            )),
        }
    }
}

impl fmt::Display for RequireApproval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Never => "never",
            Self::Broadening => "broadening",
            Self::AnyChange => "any-change",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    Allow,
    Deny,
}

/// One statement, or what amounts to one (a Lambda permission, a managed policy
/// attachment), with everything in it as text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Statement {
    /// The resource that holds it and which of its documents: `Role trust`,
    /// `Role policy NAME`, `Policy`, `Bucket policy`, `Role managed policies`.
    pub place: String,
    pub effect: Effect,
    /// `Service lambda.amazonaws.com`, `AWS *`; for an identity policy, the role, user or
    /// group it is attached to (`role ${Role}`).
    pub principals: Vec<String>,
    /// Sorted; `NotAction` entries are prefixed `not `.
    pub actions: Vec<String>,
    /// Sorted; `NotResource` entries are prefixed `not `.
    pub resources: Vec<String>,
    /// `(operator, key)` → the values it allows.
    pub conditions: BTreeMap<(String, String), BTreeSet<String>>,
}

/// A statement added (`+`) or removed (`-`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    Added,
    Removed,
}

/// One method's authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub api_key_required: bool,
    pub authorization_type: String,
}

impl fmt::Display for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.api_key_required {
            "API key required"
        } else {
            "no API key"
        };
        write!(f, "{key}, authorization {}", self.authorization_type)
    }
}

/// A method of the API whose authorization changes; `None` where it does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationChange {
    pub method: String,
    pub old: Option<Authorization>,
    pub new: Option<Authorization>,
}

impl AuthorizationChange {
    /// A new method that checks neither a key nor a caller, a key no longer required, or an
    /// authorization type changed from anything but `NONE` (another authorizer lets other
    /// callers in).
    fn relaxes(&self) -> bool {
        match (&self.old, &self.new) {
            (_, None) => false,
            (None, Some(new)) => !new.api_key_required && new.authorization_type == "NONE",
            (Some(old), Some(new)) => {
                (old.api_key_required && !new.api_key_required)
                    || (old.authorization_type != "NONE"
                        && old.authorization_type != new.authorization_type)
            }
        }
    }
}

/// The security changes of a deploy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityDiff {
    pub statements: Vec<(Sign, Statement)>,
    pub authorization: Vec<AuthorizationChange>,
    /// What becomes possible that was not: one line per grant no deployed statement covers,
    /// deny no new statement keeps, and relaxed method.
    pub broadening: Vec<String>,
}

impl SecurityDiff {
    pub fn between(old: &Value, new: &Value) -> Self {
        let (old_statements, new_statements) = (statements(old), statements(new));
        let mut changes: Vec<(Sign, Statement)> = Vec::new();
        for statement in &new_statements {
            if !old_statements.contains(statement) {
                changes.push((Sign::Added, statement.clone()));
            }
        }
        for statement in &old_statements {
            if !new_statements.contains(statement) {
                changes.push((Sign::Removed, statement.clone()));
            }
        }
        changes.sort_by(|a, b| {
            (&a.1.place, a.0 == Sign::Added).cmp(&(&b.1.place, b.0 == Sign::Added))
        });
        let mut broadening = Vec::new();
        for (sign, statement) in &changes {
            match (sign, statement.effect) {
                (Sign::Added, Effect::Allow) => {
                    for grant in statement.grants() {
                        if !old_statements.iter().any(|old| {
                            old.effect == Effect::Allow && covers(old, &grant, statement)
                        }) {
                            broadening.push(format!("{}: {grant}", statement.place));
                        }
                    }
                }
                (Sign::Removed, Effect::Deny) => {
                    for grant in statement.grants() {
                        if !new_statements
                            .iter()
                            .any(|new| new.effect == Effect::Deny && covers(new, &grant, statement))
                        {
                            broadening
                                .push(format!("{}: no longer denied: {grant}", statement.place));
                        }
                    }
                }
                _ => {}
            }
        }
        let authorization = authorization_changes(old, new);
        broadening.extend(
            authorization
                .iter()
                .filter(|c| c.relaxes())
                .filter_map(|c| {
                    let new = c.new.as_ref()?;
                    Some(format!("{}: {new}", c.method))
                }),
        );
        Self {
            statements: changes,
            authorization,
            broadening,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty() && self.authorization.is_empty()
    }

    /// Whether `level` asks before these changes are deployed.
    pub fn needs_approval(&self, level: RequireApproval) -> bool {
        match level {
            RequireApproval::Never => false,
            RequireApproval::Broadening => !self.broadening.is_empty(),
            RequireApproval::AnyChange => !self.is_empty(),
        }
    }
}

/// One principal, action and resource of a statement.
struct Grant<'a> {
    principal: &'a str,
    action: &'a str,
    resource: &'a str,
}

impl fmt::Display for Grant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} may {} on {}",
            self.principal, self.action, self.resource
        )
    }
}

impl Statement {
    fn grants(&self) -> impl Iterator<Item = Grant<'_>> {
        self.principals.iter().flat_map(move |principal| {
            self.actions.iter().flat_map(move |action| {
                self.resources.iter().map(move |resource| Grant {
                    principal,
                    action,
                    resource,
                })
            })
        })
    }
}

/// Whether `wider` allows (or denies) `grant` of `narrower` whenever `narrower` does: its
/// patterns match the grant's principal, action and resource, and each of its conditions
/// is one `narrower` has too, with no other values. `NotAction` and `NotResource` match
/// only themselves.
fn covers(wider: &Statement, grant: &Grant, narrower: &Statement) -> bool {
    let principal = wider
        .principals
        .iter()
        .any(|p| p == grant.principal || p == "*" || p == "AWS *");
    let action = wider.actions.iter().any(|a| {
        a == grant.action
            || (!a.starts_with("not ")
                && !grant.action.starts_with("not ")
                && glob(&a.to_lowercase(), &grant.action.to_lowercase()))
    });
    let resource = wider.resources.iter().any(|r| {
        r == grant.resource
            || (!r.starts_with("not ")
                && !grant.resource.starts_with("not ")
                && glob(r, grant.resource))
    });
    let conditions = wider.conditions.iter().all(|(key, allowed)| {
        narrower
            .conditions
            .get(key)
            .is_some_and(|values| values.is_subset(allowed))
    });
    principal && action && resource && conditions
}

/// IAM's wildcards: `*` any run of characters, `?` one.
fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// An intrinsic function as a short text: `${Id}` for `Ref`, `${Id.Attr}` for `Fn::GetAtt`,
/// a `Fn::Sub` string as it is; anything else as compact JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(o) if o.len() == 1 => {
            let (function, argument) = o.iter().next().expect("one member");
            match (function.as_str(), argument) {
                ("Ref", Value::String(id)) => format!("${{{id}}}"),
                ("Fn::GetAtt", Value::Array(parts)) => {
                    let parts: Vec<String> = parts.iter().map(text).collect();
                    format!("${{{}}}", parts.join("."))
                }
                ("Fn::Sub", Value::String(s)) => s.clone(),
                ("Fn::Sub", Value::Array(parts)) if !parts.is_empty() => text(&parts[0]),
                ("Fn::Join", Value::Array(parts)) if parts.len() == 2 => {
                    let separator = parts[0].as_str().unwrap_or_default();
                    let items: Vec<String> = parts[1]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(text)
                        .collect();
                    items.join(separator)
                }
                _ => value.to_string(),
            }
        }
        other => other.to_string(),
    }
}

/// A value that may be one item or a list, as sorted texts.
fn texts(value: &Value, prefix: &str) -> Vec<String> {
    let mut items: Vec<String> = match value {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|v| format!("{prefix}{}", text(v)))
            .collect(),
        one => vec![format!("{prefix}{}", text(one))],
    };
    items.sort();
    items.dedup();
    items
}

fn principals(value: &Value) -> Vec<String> {
    match value {
        Value::Object(kinds) => {
            let mut all: Vec<String> = kinds
                .iter()
                .flat_map(|(kind, ids)| texts(ids, &format!("{kind} ")))
                .collect();
            all.sort();
            all
        }
        Value::Null => Vec::new(),
        other => vec![text(other)],
    }
}

fn conditions(value: &Value) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut all = BTreeMap::new();
    for (operator, keys) in value.as_object().into_iter().flatten() {
        for (key, values) in keys.as_object().into_iter().flatten() {
            all.insert(
                (operator.clone(), key.clone()),
                texts(values, "").into_iter().collect(),
            );
        }
    }
    all
}

/// The statements of a policy document; `holders` are the principals of an identity policy
/// (`None` for a resource policy, whose statements name their own).
fn document(place: &str, document: &Value, holders: Option<&[String]>, into: &mut Vec<Statement>) {
    let statements = match &document["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    };
    for statement in &statements {
        let either = |name: &str| {
            let plain = texts(&statement[name], "");
            if plain.is_empty() {
                texts(&statement[format!("Not{name}")], "not ")
            } else {
                plain
            }
        };
        let principals = match holders {
            Some(holders) => holders.to_vec(),
            None if !statement["NotPrincipal"].is_null() => principals(&statement["NotPrincipal"])
                .into_iter()
                .map(|p| format!("not {p}"))
                .collect(),
            None => principals(&statement["Principal"]),
        };
        into.push(Statement {
            place: place.to_owned(),
            effect: if statement["Effect"] == "Deny" {
                Effect::Deny
            } else {
                Effect::Allow
            },
            principals,
            actions: either("Action"),
            resources: either("Resource"),
            conditions: conditions(&statement["Condition"]),
        });
    }
}

/// Every statement of the template, by where it is.
fn statements(template: &Value) -> Vec<Statement> {
    let mut all = Vec::new();
    for (id, resource) in template["Resources"].as_object().into_iter().flatten() {
        let properties = &resource["Properties"];
        let resource_policy = |kind: &str, all: &mut Vec<Statement>| {
            document(
                &format!("{id} {kind}"),
                &properties["PolicyDocument"],
                None,
                all,
            );
        };
        match resource["Type"].as_str().unwrap_or_default() {
            "AWS::IAM::Role" => {
                let role = vec![format!("role ${{{id}}}")];
                let mut trust = Vec::new();
                document(
                    &format!("{id} trust"),
                    &properties["AssumeRolePolicyDocument"],
                    None,
                    &mut trust,
                );
                // The role is what a trust policy's statements act on.
                for statement in &mut trust {
                    statement.resources = vec![format!("${{{id}.Arn}}")];
                }
                all.extend(trust);
                for policy in properties["Policies"].as_array().into_iter().flatten() {
                    let place = format!("{id} policy {}", text(&policy["PolicyName"]));
                    document(&place, &policy["PolicyDocument"], Some(&role), &mut all);
                }
                for arn in texts(&properties["ManagedPolicyArns"], "") {
                    all.push(Statement {
                        place: format!("{id} managed policies"),
                        effect: Effect::Allow,
                        principals: role.clone(),
                        actions: vec!["(the managed policy's)".to_owned()],
                        resources: vec![arn],
                        conditions: BTreeMap::new(),
                    });
                }
            }
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                let holders: Vec<String> =
                    [("Roles", "role"), ("Users", "user"), ("Groups", "group")]
                        .iter()
                        .flat_map(|(field, kind)| texts(&properties[*field], &format!("{kind} ")))
                        .collect();
                document(id, &properties["PolicyDocument"], Some(&holders), &mut all);
            }
            "AWS::S3::BucketPolicy" => resource_policy("bucket policy", &mut all),
            "AWS::SQS::QueuePolicy" => resource_policy("queue policy", &mut all),
            "AWS::SNS::TopicPolicy" => resource_policy("topic policy", &mut all),
            "AWS::Lambda::Permission" => all.push(permission(id, properties)),
            _ => {}
        }
    }
    all
}

/// A Lambda permission as the statement Lambda adds to the function's policy.
fn permission(id: &str, properties: &Value) -> Statement {
    let principal = text(&properties["Principal"]);
    let kind = if principal.ends_with(".amazonaws.com") {
        "Service"
    } else {
        "AWS"
    };
    let mut conditions = BTreeMap::new();
    for (property, operator, key) in [
        ("SourceArn", "ArnLike", "aws:SourceArn"),
        ("SourceAccount", "StringEquals", "aws:SourceAccount"),
        ("PrincipalOrgID", "StringEquals", "aws:PrincipalOrgID"),
    ] {
        if !properties[property].is_null() {
            conditions.insert(
                (operator.to_owned(), key.to_owned()),
                BTreeSet::from([text(&properties[property])]),
            );
        }
    }
    Statement {
        place: format!("{id} permission"),
        effect: Effect::Allow,
        principals: vec![format!("{kind} {principal}")],
        actions: vec![text(&properties["Action"])],
        resources: vec![text(&properties["FunctionName"])],
        conditions,
    }
}

fn methods(template: &Value) -> BTreeMap<String, Authorization> {
    template["Resources"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, r)| r["Type"] == "AWS::ApiGateway::Method")
        .map(|(id, r)| {
            let properties = &r["Properties"];
            let method = format!("{id} ({})", text(&properties["HttpMethod"]));
            let authorization = Authorization {
                api_key_required: properties["ApiKeyRequired"] == true
                    || properties["ApiKeyRequired"] == "true",
                authorization_type: properties["AuthorizationType"]
                    .as_str()
                    .unwrap_or("NONE")
                    .to_owned(),
            };
            (method, authorization)
        })
        .collect()
}

fn authorization_changes(old: &Value, new: &Value) -> Vec<AuthorizationChange> {
    let (mut old, new) = (methods(old), methods(new));
    let mut changes = Vec::new();
    for (method, new) in new {
        let old = old.remove(&method);
        if old.as_ref() != Some(&new) {
            changes.push(AuthorizationChange {
                method,
                old,
                new: Some(new),
            });
        }
    }
    changes.extend(old.into_iter().map(|(method, old)| AuthorizationChange {
        method,
        old: Some(old),
        new: None,
    }));
    changes.sort_by(|a, b| a.method.cmp(&b.method));
    changes
}

/// Cells of several lines each, in columns as wide as their widest line.
/// The first row is the header; a column empty below it is left out.
fn table(rows: &[Vec<Vec<String>>]) -> String {
    let columns: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .filter(|c| rows[1..].iter().any(|row| !row[*c].is_empty()))
        .collect();
    let rows: Vec<Vec<&Vec<String>>> = rows
        .iter()
        .map(|row| columns.iter().map(|c| &row[*c]).collect())
        .collect();
    let widths: Vec<usize> = (0..columns.len())
        .map(|c| {
            rows.iter()
                .flat_map(|row| row[c].iter())
                .map(|line| line.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in &rows {
        let height = row.iter().map(|cell| cell.len()).max().unwrap_or(1).max(1);
        for line in 0..height {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| {
                    format!("{:<width$}", cell.get(line).map_or("", String::as_str))
                })
                .collect();
            text.push_str("  ");
            text.push_str(cells.join("  ").trim_end());
            text.push('\n');
        }
    }
    text
}

impl fmt::Display for SecurityDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "  no IAM or API authorization changes");
        }
        let cell = |s: &str| vec![s.to_owned()];
        if !self.statements.is_empty() {
            writeln!(f, "IAM statements:")?;
            let mut rows = vec![
                [
                    "",
                    "where",
                    "effect",
                    "principal",
                    "action",
                    "resource",
                    "condition",
                ]
                .map(cell)
                .to_vec(),
            ];
            for (sign, s) in &self.statements {
                let conditions = s
                    .conditions
                    .iter()
                    .map(|((operator, key), values)| {
                        let values: Vec<&str> = values.iter().map(String::as_str).collect();
                        format!("{operator} {key}: {}", values.join(", "))
                    })
                    .collect();
                rows.push(vec![
                    cell(if *sign == Sign::Added { "+" } else { "-" }),
                    cell(&s.place),
                    cell(if s.effect == Effect::Allow {
                        "Allow"
                    } else {
                        "Deny"
                    }),
                    s.principals.clone(),
                    s.actions.clone(),
                    s.resources.clone(),
                    conditions,
                ]);
            }
            write!(f, "{}", table(&rows))?;
        }
        if !self.authorization.is_empty() {
            writeln!(f, "API authorization:")?;
            let shown = |a: &Option<Authorization>| {
                a.as_ref().map_or("(none)".to_owned(), ToString::to_string)
            };
            let mut rows = vec![["", "method", "before", "after"].map(cell).to_vec()];
            for change in &self.authorization {
                let sign = match (&change.old, &change.new) {
                    (None, _) => "+",
                    (_, None) => "-",
                    _ => "~",
                };
                rows.push(vec![
                    cell(sign),
                    cell(&change.method),
                    cell(&shown(&change.old)),
                    cell(&shown(&change.new)),
                ]);
            }
            write!(f, "{}", table(&rows))?;
        }
        if self.broadening.is_empty() {
            writeln!(f, "nothing broadens permissions")
        } else {
            writeln!(f, "broadens permissions:")?;
            for line in &self.broadening {
                writeln!(f, "  {line}")?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The stack as deployed: the synthesized template, which a deploy sends unchanged.
    fn deployed() -> Value {
        storefirst_infra::template()
            .to_json()
            .expect("it synthesizes")
    }

    fn changed(edit: impl FnOnce(&mut Value)) -> SecurityDiff {
        let mut new = deployed();
        edit(&mut new);
        SecurityDiff::between(&deployed(), &new)
    }

    fn processor_statements(template: &mut Value) -> &mut Vec<Value> {
        template["Resources"]["StreamProcessorPolicy"]["Properties"]["PolicyDocument"]["Statement"]
            .as_array_mut()
            .expect("statements")
    }

    fn add_action(template: &mut Value) {
        processor_statements(template)[0]["Action"]
            .as_array_mut()
            .expect("actions")
            .push(json!("dynamodb:DeleteItem"));
    }

    #[test]
    fn the_same_template_changes_nothing() {
        let diff = changed(|_| {});
        assert!(diff.is_empty(), "{diff}");
        assert!(!diff.needs_approval(RequireApproval::AnyChange));
    }

    #[test]
    fn an_added_action_broadens() {
        let diff = changed(add_action);
        assert_eq!(
            diff.broadening,
            [
                "StreamProcessorPolicy: role ${StreamProcessorRole} may dynamodb:DeleteItem on ${RequestsTable.Arn}"
            ]
        );
        assert!(diff.needs_approval(RequireApproval::Broadening));
        assert!(!diff.needs_approval(RequireApproval::Never));
    }

    #[test]
    fn a_new_trust_principal_broadens() {
        let diff = changed(|t| {
            t["Resources"]["StreamProcessorRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
                [0]["Principal"]["AWS"] = json!("arn:aws:iam::999999999999:root");
        });
        assert_eq!(
            diff.broadening,
            [
                "StreamProcessorRole trust: AWS arn:aws:iam::999999999999:root may sts:AssumeRole on ${StreamProcessorRole.Arn}"
            ]
        );
    }

    #[test]
    fn a_wider_resource_broadens() {
        let diff = changed(|t| {
            processor_statements(t)[0]["Resource"] = json!([{"Fn::Sub": "${RequestsTable.Arn}*"}]);
        });
        assert_eq!(
            diff.broadening,
            [
                "StreamProcessorPolicy: role ${StreamProcessorRole} may dynamodb:UpdateItem on ${RequestsTable.Arn}*"
            ]
        );
        // A narrower one does not: "*" covered ListStreams on any stream.
        let diff = changed(|t| {
            processor_statements(t)[2]["Resource"] =
                json!([{"Fn::GetAtt": ["RequestsTable", "StreamArn"]}]);
        });
        assert_eq!(diff.statements.len(), 2, "{diff}");
        assert!(diff.broadening.is_empty(), "{diff}");
    }

    #[test]
    fn a_removed_action_is_shown_and_broadens_nothing() {
        let diff = changed(|t| {
            processor_statements(t)[1]["Action"]
                .as_array_mut()
                .expect("actions")
                .retain(|a| a != "dynamodb:DescribeStream");
        });
        let signs: Vec<Sign> = diff.statements.iter().map(|(sign, _)| *sign).collect();
        assert_eq!(signs, [Sign::Removed, Sign::Added], "{diff}");
        assert!(diff.broadening.is_empty(), "{diff}");
        assert!(!diff.needs_approval(RequireApproval::Broadening));
        assert!(diff.needs_approval(RequireApproval::AnyChange));
    }

    #[test]
    fn a_removed_or_widened_condition_broadens_and_an_added_one_does_not() {
        let with = |condition: Value| {
            let mut template = deployed();
            processor_statements(&mut template)[3]["Condition"] = condition;
            template
        };
        let one = with(json!({"StringEquals": {"aws:SourceAccount": ["1"]}}));
        let two = with(json!({"StringEquals": {"aws:SourceAccount": ["1", "2"]}}));
        let none = deployed();
        let broadens =
            |old: &Value, new: &Value| !SecurityDiff::between(old, new).broadening.is_empty();
        assert!(broadens(&one, &none), "removed");
        assert!(broadens(&one, &two), "another value");
        assert!(!broadens(&none, &one), "added");
        assert!(!broadens(&two, &one), "fewer values");
    }

    #[test]
    fn a_removed_deny_broadens_and_an_added_allow_of_a_wildcard_covers_its_actions() {
        let deny = json!({"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"});
        let mut with_deny = deployed();
        processor_statements(&mut with_deny).push(deny);
        let diff = SecurityDiff::between(&with_deny, &deployed());
        assert_eq!(
            diff.broadening,
            [
                "StreamProcessorPolicy: no longer denied: role ${StreamProcessorRole} may dynamodb:* on *"
            ]
        );
        let diff = SecurityDiff::between(&deployed(), &with_deny);
        assert!(diff.broadening.is_empty(), "a deny added: {diff}");

        // Allow dynamodb:* on the table, then also Allow dynamodb:Query there: covered.
        let mut wide = deployed();
        processor_statements(&mut wide)[0]["Action"] = json!("dynamodb:*");
        let mut more = wide.clone();
        processor_statements(&mut more).push(
            json!({"Effect": "Allow", "Action": "DynamoDB:Query", "Resource": {"Fn::GetAtt": ["RequestsTable", "Arn"]}}),
        );
        let diff = SecurityDiff::between(&wide, &more);
        assert_eq!(diff.statements.len(), 1, "{diff}");
        assert!(diff.broadening.is_empty(), "{diff}");
    }

    #[test]
    fn the_api_key_no_longer_required_broadens_and_requiring_it_does_not() {
        let relaxed = changed(|t| {
            t["Resources"]["ApiGetMethod"]["Properties"]["ApiKeyRequired"] = json!(false);
        });
        assert_eq!(
            relaxed.broadening,
            ["ApiGetMethod (GET): no API key, authorization NONE"]
        );
        expect_test::expect![[r#"
            API authorization:
                 method              before                                after
              ~  ApiGetMethod (GET)  API key required, authorization NONE  no API key, authorization NONE
            broadens permissions:
              ApiGetMethod (GET): no API key, authorization NONE
        "#]]
        .assert_eq(&relaxed.to_string());
        let mut open = deployed();
        open["Resources"]["ApiGetMethod"]["Properties"]["ApiKeyRequired"] = json!(false);
        let diff = SecurityDiff::between(&open, &deployed());
        assert_eq!(diff.authorization.len(), 1, "{diff}");
        assert!(diff.broadening.is_empty(), "{diff}");
        let iam = changed(|t| {
            t["Resources"]["ApiGetMethod"]["Properties"]["AuthorizationType"] = json!("AWS_IAM");
        });
        assert!(iam.broadening.is_empty(), "NONE to AWS_IAM narrows: {iam}");
    }

    #[test]
    fn lambda_permissions_and_managed_policies_are_statements_too() {
        let mut new = deployed();
        new["Resources"]["InvokeFromAnywhere"] = json!({
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Ref": "StreamProcessor"},
                "Principal": "s3.amazonaws.com",
                "SourceAccount": {"Ref": "AWS::AccountId"}
            }
        });
        new["Resources"]["StreamProcessorRole"]["Properties"]["ManagedPolicyArns"] =
            json!(["arn:aws:iam::aws:policy/AdministratorAccess"]);
        let diff = SecurityDiff::between(&deployed(), &new);
        assert_eq!(
            diff.broadening,
            [
                "InvokeFromAnywhere permission: Service s3.amazonaws.com may lambda:InvokeFunction on ${StreamProcessor}",
                "StreamProcessorRole managed policies: role ${StreamProcessorRole} may (the managed policy's) on arn:aws:iam::aws:policy/AdministratorAccess",
            ]
        );
    }

    #[test]
    fn the_table_shows_each_statement_added_or_removed() {
        let diff = changed(add_action);
        expect_test::expect![[r#"
            IAM statements:
                 where                  effect  principal                    action               resource
              -  StreamProcessorPolicy  Allow   role ${StreamProcessorRole}  dynamodb:UpdateItem  ${RequestsTable.Arn}
              +  StreamProcessorPolicy  Allow   role ${StreamProcessorRole}  dynamodb:DeleteItem  ${RequestsTable.Arn}
                                                                             dynamodb:UpdateItem
            broadens permissions:
              StreamProcessorPolicy: role ${StreamProcessorRole} may dynamodb:DeleteItem on ${RequestsTable.Arn}
        "#]]
        .assert_eq(&diff.to_string());
    }
}
