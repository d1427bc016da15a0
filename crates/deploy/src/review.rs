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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Action;

    #[test]
    fn a_changed_mapping_template_is_a_unified_diff_under_its_method() {
        let deployed = storefirst_infra::template()
            .to_json()
            .expect("it synthesizes");
        let mut new = deployed.clone();
        let responses = &mut new["Resources"]["ApiPutMethod"]["Properties"]["Integration"]["IntegrationResponses"];
        let template = &mut responses[0]["ResponseTemplates"]["application/json"];
        let text = template.as_str().expect("a mapping template").to_owned();
        let first = text.lines().next().expect("a first line").to_owned();
        *template = json!(text.replacen(&first, "## changed", 1));
        let parameters = BTreeMap::from([("Key".to_owned(), "a.zip".to_owned())]);
        let changed = BTreeMap::from([("Key".to_owned(), "b.zip".to_owned())]);
        let review = Review::between(Some((&deployed, &parameters)), &new, &changed);
        let method = Change {
            action: Action::Modify,
            logical_id: "ApiPutMethod".into(),
            resource_type: "AWS::ApiGateway::Method".into(),
        };
        let report = review.report("app", &[method]);
        let expected = format!(
            "parameters of app:\n  Key: a.zip → b.zip\nchanges to app:\n  ~ modify       \
             ApiPutMethod                             AWS::ApiGateway::Method\n      \
             Integration.IntegrationResponses[0].ResponseTemplates.application/json:\n      @@ -1,3 +1,3 @@\n      \
             -{first}\n      +## changed\n"
        );
        assert!(report.starts_with(&expected), "{report}");
        assert!(
            report.ends_with("security changes to app:\n  no IAM or API authorization changes"),
            "{report}"
        );
    }
}
