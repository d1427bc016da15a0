//! What a change set does to each resource ([`Change`]), which changes need approval, and
//! the summary a deploy or diff prints.

use std::{collections::BTreeMap, fmt};

use aws_sdk_cloudformation::types::{ChangeAction, Replacement, ResourceChange};
use serde_json::Value;

use crate::properties::PropertyChange;

/// What a change set does to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Add,
    Modify,
    /// A new physical resource replaces the old one; `conditional` when CloudFormation can
    /// only tell at execution time.
    Replace {
        conditional: bool,
    },
    Remove,
    /// Import or a dynamic change: shown, never guessed at.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub action: Action,
    pub logical_id: String,
    pub resource_type: String,
}

/// Resource types whose replacement or removal loses data or in-flight messages: these
/// need `--yes` or a confirmation.
const STATEFUL: &[&str] = &["AWS::DynamoDB::Table", "AWS::SQS::Queue"];

impl Change {
    pub(crate) fn from_resource_change(change: &ResourceChange) -> Self {
        let action = match (change.action(), change.replacement()) {
            (Some(ChangeAction::Add), _) => Action::Add,
            (Some(ChangeAction::Remove), _) => Action::Remove,
            (Some(ChangeAction::Modify), Some(Replacement::True)) => {
                Action::Replace { conditional: false }
            }
            (Some(ChangeAction::Modify), Some(Replacement::Conditional)) => {
                Action::Replace { conditional: true }
            }
            (Some(ChangeAction::Modify), _) => Action::Modify,
            _ => Action::Other,
        };
        Self {
            action,
            logical_id: change.logical_resource_id().unwrap_or_default().to_owned(),
            resource_type: change.resource_type().unwrap_or_default().to_owned(),
        }
    }

    /// Replacing or removing it loses state.
    pub fn is_destructive(&self) -> bool {
        matches!(self.action, Action::Replace { .. } | Action::Remove)
            && STATEFUL.contains(&self.resource_type.as_str())
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            Action::Add => "+ add",
            Action::Modify => "~ modify",
            Action::Replace { conditional: false } => "! replace",
            Action::Replace { conditional: true } => "! may replace",
            Action::Remove => "- remove",
            Action::Other => "? change",
        };
        write!(
            f,
            "  {action:<14} {:<40} {}",
            self.logical_id, self.resource_type
        )
    }
}

/// Every resource of a template as an addition: the diff against a stack that does not
/// exist yet, worked out without touching AWS.
pub(crate) fn all_added(template: &Value) -> Vec<Change> {
    template["Resources"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(id, resource)| Change {
            action: Action::Add,
            logical_id: id.clone(),
            resource_type: resource["Type"].as_str().unwrap_or_default().to_owned(),
        })
        .collect()
}

/// One line per change, each modified resource's changed properties under it, and a count
/// per action.
pub(crate) fn summary(
    stack: &str,
    changes: &[Change],
    properties: &BTreeMap<String, Vec<PropertyChange>>,
) -> String {
    let mut text = format!("changes to {stack}:\n");
    for change in changes {
        text.push_str(&format!("{change}\n"));
        if !matches!(change.action, Action::Modify | Action::Replace { .. }) {
            continue;
        }
        for property in properties.get(&change.logical_id).into_iter().flatten() {
            for line in property.to_string().lines() {
                text.push_str(&format!("      {line}\n"));
            }
        }
    }
    let count = |wanted: fn(Action) -> bool| changes.iter().filter(|c| wanted(c.action)).count();
    text.push_str(&format!(
        "{} to add, {} to modify, {} to replace, {} to remove",
        count(|a| a == Action::Add),
        count(|a| matches!(a, Action::Modify | Action::Other)),
        count(|a| matches!(a, Action::Replace { .. })),
        count(|a| a == Action::Remove),
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(action: ChangeAction, replacement: Option<Replacement>, kind: &str) -> Change {
        let mut builder = ResourceChange::builder()
            .action(action)
            .logical_resource_id("Thing")
            .resource_type(kind);
        if let Some(replacement) = replacement {
            builder = builder.replacement(replacement);
        }
        Change::from_resource_change(&builder.build())
    }

    fn check(
        action: ChangeAction,
        replacement: Option<Replacement>,
        kind: &str,
        expected: Action,
        destructive: bool,
    ) {
        let change = change(action, replacement, kind);
        assert_eq!(change.action, expected, "{change}");
        assert_eq!(change.is_destructive(), destructive, "{change}");
    }

    #[test]
    fn actions_and_what_needs_approval() {
        use ChangeAction::{Add, Modify, Remove};
        let table = "AWS::DynamoDB::Table";
        let queue = "AWS::SQS::Queue";
        let function = "AWS::Lambda::Function";
        check(Add, None, table, Action::Add, false);
        check(
            Modify,
            Some(Replacement::False),
            table,
            Action::Modify,
            false,
        );
        // moto leaves Replacement out: a plain modify.
        check(Modify, None, table, Action::Modify, false);
        let replace = Action::Replace { conditional: false };
        check(Modify, Some(Replacement::True), table, replace, true);
        let maybe = Action::Replace { conditional: true };
        check(Modify, Some(Replacement::Conditional), queue, maybe, true);
        check(Remove, None, queue, Action::Remove, true);
        check(Modify, Some(Replacement::True), function, replace, false);
        check(Remove, None, function, Action::Remove, false);
        check(ChangeAction::Import, None, table, Action::Other, false);
    }

    #[test]
    fn the_summary_counts_each_action() {
        let changes = [
            change(ChangeAction::Add, None, "AWS::SQS::Queue"),
            change(ChangeAction::Modify, None, "AWS::Lambda::Function"),
            change(
                ChangeAction::Modify,
                Some(Replacement::True),
                "AWS::IAM::Role",
            ),
            change(ChangeAction::Remove, None, "AWS::Logs::LogGroup"),
            change(ChangeAction::Remove, None, "AWS::Logs::LogGroup"),
        ];
        let batch = PropertyChange {
            path: "BatchSize".into(),
            old: Some(100.into()),
            new: Some(50.into()),
        };
        let text = summary(
            "app",
            &changes,
            &BTreeMap::from([("Thing".into(), vec![batch])]),
        );
        assert!(text.starts_with("changes to app:\n"), "{text}");
        assert!(
            text.ends_with("1 to add, 1 to modify, 1 to replace, 2 to remove"),
            "{text}"
        );
        assert!(
            text.contains(
                "  ~ modify       Thing                                    AWS::Lambda::Function\n      BatchSize: 100 → 50\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_new_stack_adds_every_resource() {
        let template = serde_json::json!({"Resources": {
            "Queue": {"Type": "AWS::SQS::Queue"},
            "Table": {"Type": "AWS::DynamoDB::Table"},
        }});
        let changes = all_added(&template);
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().all(|c| c.action == Action::Add));
        assert_eq!(changes[1].resource_type, "AWS::DynamoDB::Table");
    }
}
