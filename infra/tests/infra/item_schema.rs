//! API Gateway's mapping templates and the table speak the item schema of
//! `storefirst_lambda::item`, the one the outcome writes and the local DynamoDB adapter use:
//! a misspelt attribute in a template would store or read an attribute nothing else knows.

use std::collections::BTreeSet;

use serde_json::Value;
use storefirst_domain::Status;
use storefirst_infra::stack::mapping::MappingTemplates;
use storefirst_lambda::item;

/// The refusal marker of the request templates (see post-request.vtl): an
/// ExpressionAttributeName that names why a request is refused, never an item attribute.
const REFUSED: &str = "refused";

/// An attribute name a template uses, and where.
#[derive(Debug)]
struct Use {
    attribute: String,
    context: String,
}

/// Every DynamoDB attribute name in `text`: the values of `"#placeholder": "name"`
/// (ExpressionAttributeNames), the keys of `"name": {"S": ...}` (Item, Key), bare names in
/// `attribute_exists(name)` and `attribute_not_exists(name)`, and the response paths
/// `$.Item.name.`, `$.Attributes.name.` and `$item.name.` (the item read with
/// `$input.path('$.Item')`). Also checks what the names stand beside: a placeholder is `#`
/// and its name, and a stored status is one the domain knows.
fn attribute_uses(text: &str) -> Result<Vec<Use>, String> {
    let mut uses = Vec::new();
    let mut problems = Vec::new();
    let mut found = |attribute: &str, context: &str| {
        uses.push(Use {
            attribute: attribute.to_owned(),
            context: context.to_owned(),
        });
    };
    for (at, _) in text.match_indices("\"#") {
        let rest = &text[at + 2..];
        let placeholder = quoted_prefix(rest);
        let after = rest[placeholder.len() + 1..].trim_start();
        let Some(value) = after.strip_prefix(':').map(str::trim_start) else {
            continue;
        };
        let Some(value) = value.strip_prefix('"') else {
            continue;
        };
        let attribute = quoted_prefix(value);
        let refusal = attribute == REFUSED
            && (placeholder == REFUSED || placeholder.starts_with(&format!("{REFUSED}_")));
        if refusal {
            continue;
        }
        if placeholder != attribute {
            problems.push(format!(
                "placeholder #{placeholder} stands for {attribute:?}: name it #{attribute}"
            ));
        }
        found(attribute, &format!("\"#{placeholder}\": \"{attribute}\""));
    }
    for (at, _) in text.match_indices(": {\"") {
        let Some(key_end) = text[..at].strip_suffix('"') else {
            continue;
        };
        let key = &key_end[key_end.rfind('"').map_or(0, |q| q + 1)..];
        let kind = quoted_prefix(&text[at + 4..]);
        let typed = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"].contains(&kind);
        // `:value` keys are ExpressionAttributeValues, not attributes.
        if !typed || key.starts_with(':') {
            continue;
        }
        found(key, &format!("\"{key}\": {{\"{kind}\""));
        if key == item::STATUS || key == ":pending" {
            let literal = text[at + 4 + kind.len() + 1..]
                .trim_start_matches([':', ' '])
                .trim_start_matches('"');
            let literal = quoted_prefix(literal);
            if literal.parse::<Status>() != Ok(Status::Pending) {
                problems.push(format!("a new item's status is {literal:?}, not pending"));
            }
        }
    }
    for function in ["attribute_exists(", "attribute_not_exists("] {
        for (at, _) in text.match_indices(function) {
            let name = identifier(&text[at + function.len()..]);
            if !name.is_empty() {
                found(name, &format!("{function}{name})"));
            }
        }
    }
    for path in ["$.Item.", "$.Attributes.", "$item."] {
        for (at, _) in text.match_indices(path) {
            let name = identifier(&text[at + path.len()..]);
            found(name, &format!("{path}{name}"));
        }
    }
    if problems.is_empty() {
        Ok(uses)
    } else {
        Err(problems.join("; "))
    }
}

/// The text up to the next `"`.
fn quoted_prefix(text: &str) -> &str {
    &text[..text.find('"').unwrap_or(text.len())]
}

fn identifier(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// What is wrong with the attribute names of `templates`: names outside the schema, and
/// schema names no template uses.
fn schema_problems(templates: &[(&str, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (name, text) in templates {
        match attribute_uses(text) {
            Ok(uses) => {
                for Use { attribute, context } in uses {
                    if !item::ALL.contains(&attribute.as_str()) {
                        problems.push(format!(
                            "{name}: {context} names {attribute:?}, which is no attribute of \
                             storefirst_lambda::item ({:?})",
                            item::ALL
                        ));
                    }
                    used.insert(attribute);
                }
            }
            Err(problem) => problems.push(format!("{name}: {problem}")),
        }
    }
    for attribute in item::ALL {
        if !used.contains(attribute) {
            problems.push(format!(
                "no template uses {attribute:?}: GET shows every attribute, PUT checks the TTL"
            ));
        }
    }
    problems
}

fn composed() -> Vec<(&'static str, String)> {
    MappingTemplates::compose()
        .all()
        .into_iter()
        .map(|(name, text)| (name, text.to_owned()))
        .collect()
}

#[test]
fn the_mapping_templates_use_the_item_schema() {
    let problems = schema_problems(&composed());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn a_misspelt_attribute_in_a_template_is_found() {
    let misspellings = [
        ("\"#status\": \"status\"", "\"#status\": \"stauts\""),
        ("\"attempts\": {\"N\"", "\"attempt\": {\"N\""),
        ("$.Item.result.S", "$.Item.reslt.S"),
        ("$.Attributes.status.S", "$.Attributes.state.S"),
        ("$item.updated_at.N", "$item.updatedAt.N"),
        ("attribute_not_exists(id)", "attribute_not_exists(ID)"),
        (
            "\"status\": {\"S\": \"pending\"}",
            "\"status\": {\"S\": \"waiting\"}",
        ),
    ];
    for (right, wrong) in misspellings {
        let templates: Vec<_> = composed()
            .into_iter()
            .map(|(name, text)| (name, text.replace(right, wrong)))
            .collect();
        assert_ne!(templates, composed(), "no template has {right}");
        let problems = schema_problems(&templates);
        assert!(!problems.is_empty(), "{wrong} went unnoticed");
    }
}

#[test]
fn the_table_keys_and_expires_items_by_the_schema() {
    let template: Value =
        serde_json::from_str(&storefirst_infra::synthesize().expect("the stack synthesizes"))
            .expect("the template is JSON");
    let tables: Vec<&Value> = template["Resources"]
        .as_object()
        .expect("the template has resources")
        .values()
        .filter(|resource| resource["Type"] == "AWS::DynamoDB::Table")
        .collect();
    assert_eq!(tables.len(), 1, "one requests table");
    let properties = &tables[0]["Properties"];
    assert_eq!(properties["KeySchema"][0]["AttributeName"], item::ID);
    assert_eq!(
        properties["TimeToLiveSpecification"]["AttributeName"],
        item::EXPIRES_AT
    );
}
