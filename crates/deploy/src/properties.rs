//! What changes inside each resource: the deployed template against the synthesized one,
//! property by property (old → new), nested values by path, long strings (mapping
//! templates) and large values as a unified diff.

use std::{collections::BTreeMap, fmt};

use serde_json::Value;

/// One changed value of a resource; `None` is absent.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyChange {
    /// `BatchSize`, `Integration.RequestTemplates.application/json`, `Policies[0]...`; a
    /// resource attribute other than `Properties` (`DeletionPolicy`) by its own name.
    pub path: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// The changed values of every resource both templates hold, by logical id.
pub(crate) fn between(old: &Value, new: &Value) -> BTreeMap<String, Vec<PropertyChange>> {
    let mut changed = BTreeMap::new();
    let (Some(old), Some(new)) = (old["Resources"].as_object(), new["Resources"].as_object())
    else {
        return changed;
    };
    for (id, new) in new {
        let Some(old) = old.get(id) else { continue };
        let mut changes = Vec::new();
        let keys = union(old, new);
        for key in keys.iter().filter(|key| *key != "Type") {
            // Properties are what people think of as the resource: no prefix for them.
            let path = if key == "Properties" { "" } else { key };
            walk(path.to_owned(), old.get(key), new.get(key), &mut changes);
        }
        if !changes.is_empty() {
            changed.insert(id.clone(), changes);
        }
    }
    changed
}

fn union(old: &Value, new: &Value) -> Vec<String> {
    let mut keys: Vec<String> = [old, new]
        .iter()
        .filter_map(|v| v.as_object())
        .flat_map(|o| o.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn walk(path: String, old: Option<&Value>, new: Option<&Value>, into: &mut Vec<PropertyChange>) {
    if old == new {
        return;
    }
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (old, new) {
        (Some(old @ Value::Object(_)), Some(new @ Value::Object(_))) => {
            for key in union(old, new) {
                walk(join(&key), old.get(&key), new.get(&key), into);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) if a.len() == b.len() => {
            for (index, (a, b)) in a.iter().zip(b).enumerate() {
                walk(format!("{path}[{index}]"), Some(a), Some(b), into);
            }
        }
        _ => into.push(PropertyChange {
            path,
            old: old.cloned(),
            new: new.cloned(),
        }),
    }
}

/// Values longer than this (or on several lines) are shown as a unified diff.
const INLINE: usize = 60;

fn inline(value: &Option<Value>) -> String {
    value
        .as_ref()
        .map_or_else(|| "(none)".to_owned(), Value::to_string)
}

/// The value as lines for a unified diff: a string as it is, anything else as pretty JSON.
fn lines(value: &Option<Value>) -> String {
    match value {
        None => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => serde_json::to_string_pretty(other).expect("JSON values serialize"),
    }
}

impl fmt::Display for PropertyChange {
    /// `BatchSize: 100 → 50`; a long value as `path:` and a unified diff below it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (old, new) = (inline(&self.old), inline(&self.new));
        let multiline = |v: &Option<Value>| {
            v.as_ref()
                .and_then(Value::as_str)
                .is_some_and(|s| s.contains('\n'))
        };
        if old.len() <= INLINE
            && new.len() <= INLINE
            && !multiline(&self.old)
            && !multiline(&self.new)
        {
            return write!(f, "{}: {old} → {new}", self.path);
        }
        let (old, new) = (lines(&self.old), lines(&self.new));
        let diff = similar::TextDiff::from_lines(&old, &new);
        write!(f, "{}:", self.path)?;
        for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
            write!(f, "\n{}", hunk.header())?;
            for change in hunk.iter_changes() {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Equal => ' ',
                };
                write!(f, "\n{sign}{}", change.value().trim_end_matches('\n'))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn resource(properties: Value) -> Value {
        json!({"Resources": {"Thing": {"Type": "T", "Properties": properties}}})
    }

    fn shown(old: Value, new: Value) -> Vec<String> {
        between(&resource(old), &resource(new))
            .remove("Thing")
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn each_changed_value_is_shown_by_its_path_old_to_new() {
        assert_eq!(
            shown(
                json!({"BatchSize": 100, "Filter": {"Patterns": [{"Pattern": "a"}]}, "Same": 1}),
                json!({"BatchSize": 50, "Filter": {"Patterns": [{"Pattern": "b"}]}, "Same": 1, "New": true}),
            ),
            [
                "BatchSize: 100 → 50",
                "Filter.Patterns[0].Pattern: \"a\" → \"b\"",
                "New: (none) → true",
            ]
        );
    }

    #[test]
    fn arrays_of_another_length_are_shown_whole() {
        assert_eq!(
            shown(json!({"Actions": ["a"]}), json!({"Actions": ["a", "b"]})),
            ["Actions: [\"a\"] → [\"a\",\"b\"]"]
        );
    }

    #[test]
    fn a_template_on_several_lines_is_a_unified_diff() {
        let old = "one\ntwo\nthree\nfour\nfive\nsix\n";
        let new = "one\ntwo\nthree\nFOUR\nfive\nsix\n";
        assert_eq!(
            shown(json!({"Template": old}), json!({"Template": new})),
            ["Template:\n@@ -2,5 +2,5 @@\n two\n three\n-four\n+FOUR\n five\n six"]
        );
    }

    #[test]
    fn resources_only_one_template_holds_and_unchanged_ones_are_left_out() {
        let old = json!({"Resources": {"Gone": {"Type": "T"}, "Kept": {"Type": "T", "Properties": {"A": 1}}}});
        let new = json!({"Resources": {"Added": {"Type": "T"}, "Kept": {"Type": "T", "Properties": {"A": 1}, "DeletionPolicy": "Retain"}}});
        let changed = between(&old, &new);
        assert_eq!(changed.keys().collect::<Vec<_>>(), ["Kept"]);
        assert_eq!(
            changed["Kept"][0].to_string(),
            "DeletionPolicy: (none) → \"Retain\""
        );
    }
}
