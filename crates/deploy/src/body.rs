//! The template as sent to CloudFormation: compact JSON with its resources in dependency
//! order. CloudFormation ignores the order; emulators that create a change set's resources
//! in template order (moto 5.2 skips `DependsOn` there) then create them correctly too.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Compact JSON; `Resources` lists each resource after everything it depends on.
pub(crate) fn template_body(template: &Value) -> String {
    let Some(object) = template.as_object() else {
        return template.to_string();
    };
    let members: Vec<String> = object
        .iter()
        .map(|(key, value)| {
            let value = match (key.as_str(), value.as_object()) {
                ("Resources", Some(resources)) => ordered_resources(resources),
                _ => value.to_string(),
            };
            format!("{}:{value}", Value::from(key.as_str()))
        })
        .collect();
    format!("{{{}}}", members.join(","))
}

fn ordered_resources(resources: &serde_json::Map<String, Value>) -> String {
    let members: Vec<String> = dependency_order(resources)
        .into_iter()
        .map(|id| format!("{}:{}", Value::from(id), resources[id]))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// Resource ids, each after the resources it names in `DependsOn`, `Ref`, `Fn::GetAtt` or
/// `Fn::Sub`; ties (and any cycle, which CloudFormation refuses anyway) alphabetical.
fn dependency_order(resources: &serde_json::Map<String, Value>) -> Vec<&str> {
    let mut waiting: BTreeMap<&str, BTreeSet<&str>> = resources
        .iter()
        .map(|(id, resource)| {
            let mut needs = BTreeSet::new();
            references(resource, &mut needs);
            needs.retain(|other| *other != id && resources.contains_key(*other));
            (id.as_str(), needs)
        })
        .collect();
    let mut order = Vec::with_capacity(waiting.len());
    while !waiting.is_empty() {
        let ready: Vec<&str> = waiting
            .iter()
            .filter(|(_, needs)| needs.is_empty())
            .map(|(id, _)| *id)
            .collect();
        let next = if ready.is_empty() {
            waiting.keys().copied().collect()
        } else {
            ready
        };
        for id in &next {
            waiting.remove(id);
        }
        for needs in waiting.values_mut() {
            for id in &next {
                needs.remove(id);
            }
        }
        order.extend(next);
    }
    order
}

/// Every id `value` names: `DependsOn`, `Ref`, `Fn::GetAtt` and `${Id}`/`${Id.Attr}` in
/// `Fn::Sub`. Non-resources (parameters, pseudo parameters) are filtered by the caller.
fn references<'a>(value: &'a Value, into: &mut BTreeSet<&'a str>) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object {
                match (key.as_str(), inner) {
                    ("Ref", Value::String(id)) => {
                        into.insert(id);
                    }
                    ("DependsOn", Value::String(id)) => {
                        into.insert(id);
                    }
                    ("DependsOn", Value::Array(items)) => {
                        into.extend(items.iter().filter_map(Value::as_str));
                    }
                    ("Fn::GetAtt", Value::Array(items)) => {
                        into.extend(items.first().and_then(Value::as_str));
                    }
                    ("Fn::Sub", sub) => {
                        let text = match sub {
                            Value::Array(items) => items.first().and_then(Value::as_str),
                            other => other.as_str(),
                        };
                        into.extend(text.into_iter().flat_map(sub_names));
                        references(sub, into);
                    }
                    _ => references(inner, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, into)),
        _ => {}
    }
}

/// The ids in `${Id}` and `${Id.Attribute}`; `${!Literal}` is not one.
fn sub_names(text: &str) -> impl Iterator<Item = &str> {
    text.split("${").skip(1).filter_map(|rest| {
        let name = rest.split('}').next()?;
        (!name.starts_with('!')).then(|| name.split('.').next().unwrap_or(name))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The resource ids in the order the body sends them, after checking that the body is
    /// the same template and that every resource comes after those it names.
    fn ordered(template: &Value) -> Vec<String> {
        let body = template_body(template);
        let parsed: Value = serde_json::from_str(&body).expect("the body is JSON");
        assert_eq!(&parsed, template, "the same template, reordered only");
        let resources = template["Resources"].as_object().unwrap();
        let mut ids: Vec<(usize, String)> = resources
            .keys()
            .map(|id| (body.find(&format!("\"{id}\":{{")).unwrap(), id.clone()))
            .collect();
        ids.sort();
        let order: Vec<String> = ids.into_iter().map(|(_, id)| id).collect();
        order
    }

    /// Whether each resource comes after everything it names.
    fn after_dependencies(template: &Value, order: &[String]) -> Result<(), String> {
        let resources = template["Resources"].as_object().unwrap();
        for (at, id) in order.iter().enumerate() {
            let mut needs = BTreeSet::new();
            references(&resources[id], &mut needs);
            for need in needs
                .iter()
                .filter(|n| resources.contains_key(**n) && *n != id)
            {
                if !order[..at].iter().any(|o| o == need) {
                    return Err(format!("{id} comes before {need}: {order:?}"));
                }
            }
        }
        Ok(())
    }

    #[test]
    fn resources_come_after_what_they_depend_on() {
        let template = json!({
            "Parameters": {"Bucket": {"Type": "String"}},
            "Resources": {
                "ADeployment": {"Type": "D", "DependsOn": ["Method"]},
                "Method": {"Type": "M", "Properties": {"RestApi": {"Ref": "Api"}, "Uri": {"Fn::Sub": "arn:${AWS::Region}:${Role.Arn}/${!Literal}"}}},
                "Api": {"Type": "A", "Properties": {"Bucket": {"Ref": "Bucket"}}},
                "Role": {"Type": "R"},
                "Alarm": {"Type": "W", "Properties": {"Target": {"Fn::GetAtt": ["ADeployment", "Id"]}}},
                "Stage": {"Type": "S", "DependsOn": "ADeployment"},
            }
        });
        let order = ordered(&template);
        after_dependencies(&template, &order).unwrap_or_else(|e| panic!("{e}"));
        // The check can fail: the alphabetical order puts ADeployment before its Method.
        let mut alphabetical = order.clone();
        alphabetical.sort();
        assert!(after_dependencies(&template, &alphabetical).is_err());
    }

    #[test]
    fn a_cycle_still_lists_every_resource() {
        let template = json!({"Resources": {
            "A": {"Type": "T", "DependsOn": "B"},
            "B": {"Type": "T", "DependsOn": "A"},
            "C": {"Type": "T"},
        }});
        let mut order = ordered(&template);
        order.sort();
        assert_eq!(order, ["A", "B", "C"]);
    }

    #[test]
    fn the_stack_template_sends_every_resource_after_what_it_depends_on() {
        let template = storefirst_infra::template()
            .to_json()
            .expect("it synthesizes");
        let order = ordered(&template);
        after_dependencies(&template, &order).unwrap_or_else(|e| panic!("{e}"));
    }
}
