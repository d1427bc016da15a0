//! What a deploy changes as the deployed and synthesized templates tell it: parameters,
//! each resource's properties, and the security changes; printed with the change set's
//! resource list by [`Review::report`].

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{
    Change, changes,
    properties::{self, PropertyChange},
    security::SecurityDiff,
};

/// The templates' side of a change: what CloudFormation's change set does not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Review {
    /// Parameters whose value changes: (name, deployed value, new value).
    pub parameters: Vec<(String, Option<String>, String)>,
    /// Changed values of each resource both templates hold, by logical id.
    pub properties: BTreeMap<String, Vec<PropertyChange>>,
    pub security: SecurityDiff,
}

impl Review {
    /// `old` is the deployed template and parameters, `None` for a stack not created yet.
    pub(crate) fn between(
        old: Option<(&Value, &BTreeMap<String, String>)>,
        template: &Value,
        parameters: &BTreeMap<String, String>,
    ) -> Self {
        let empty = Value::Object(Default::default());
        let (old_template, old_parameters) = match old {
            Some((template, parameters)) => (template, Some(parameters)),
            None => (&empty, None),
        };
        Self {
            parameters: old_parameters
                .map(|old| {
                    parameters
                        .iter()
                        .filter(|(name, value)| old.get(*name) != Some(value))
                        .map(|(name, value)| (name.clone(), old.get(name).cloned(), value.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            properties: properties::between(old_template, template),
            security: SecurityDiff::between(old_template, template),
        }
    }

    /// The changed parameters, the resources with their changed properties, then the
    /// security section.
    pub fn report(&self, stack: &str, changes: &[Change]) -> String {
        let mut text = String::new();
        if !self.parameters.is_empty() {
            text.push_str(&format!("parameters of {stack}:\n"));
            for (name, old, new) in &self.parameters {
                let old = old.as_deref().unwrap_or("(none)");
                text.push_str(&format!("  {name}: {old} → {new}\n"));
            }
        }
        text.push_str(&changes::summary(stack, changes, &self.properties));
        text.push_str("\n\n");
        text.push_str(&self.security_report(stack));
        text
    }

    /// The security section alone (`diff --security-only`).
    pub fn security_report(&self, stack: &str) -> String {
        format!("security changes to {stack}:\n{}", self.security)
            .trim_end()
            .to_owned()
    }
}
