//! A CloudFormation template: parameters, conditions, resources, outputs.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::model::{Condition, Expr, SynthError, check};

/// A resource type of the model: its CloudFormation name, the attributes `Fn::GetAtt` can
/// read, and its properties as the struct itself.
pub trait ResourceType: Serialize {
    const TYPE: &'static str;
    const ATTRIBUTES: &'static [&'static str];
}

/// A logical id in a template, as the constructs hand it around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logical(String);

impl Logical {
    pub fn id(&self) -> &str {
        &self.0
    }

    /// `Ref`: a resource's physical id (name, URL, ...), or a parameter's value.
    pub fn r#ref(&self) -> Expr {
        Expr::Ref(self.0.clone())
    }

    pub fn get_att(&self, attribute: &str) -> Expr {
        Expr::GetAtt(self.0.clone(), attribute.to_owned())
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum DeletionPolicy {
    Retain,
    /// Retained, except when the stack's first create rolls back: then there is nothing
    /// worth keeping, and a retained table or queue would block the next attempt's names
    /// and cost money unseen.
    RetainExceptOnCreate,
}

/// A resource with its type, properties and resource attributes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Resource {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<String>,
    properties: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    deletion_policy: Option<DeletionPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    update_replace_policy: Option<DeletionPolicy>,
    #[serde(skip)]
    attributes: &'static [&'static str],
}

impl Resource {
    pub fn new<T: ResourceType>(properties: T) -> Self {
        Self {
            kind: T::TYPE,
            condition: None,
            depends_on: Vec::new(),
            properties: serde_json::to_value(properties)
                .expect("resource properties serialize: they hold only strings, numbers and maps"),
            deletion_policy: None,
            update_replace_policy: None,
            attributes: T::ATTRIBUTES,
        }
    }

    /// Created only after `other` is complete.
    pub fn depends_on(mut self, other: &Logical) -> Self {
        self.depends_on.push(other.id().to_owned());
        self
    }

    /// Created only when `condition` holds.
    pub fn condition(mut self, condition: &str) -> Self {
        self.condition = Some(condition.to_owned());
        self
    }

    /// Kept, with its data, when it is removed from the stack, replaced, or the stack is
    /// deleted; deleted when the stack's first create fails.
    pub fn retain(mut self) -> Self {
        self.deletion_policy = Some(DeletionPolicy::RetainExceptOnCreate);
        self.update_replace_policy = Some(DeletionPolicy::Retain);
        self
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn attributes(&self) -> &'static [&'static str] {
        self.attributes
    }

    pub fn resource_condition(&self) -> Option<&str> {
        self.condition.as_deref()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Parameter {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub description: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_values: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<&'static str>,
    /// What CloudFormation says when a value does not match `allowed_pattern`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint_description: Option<&'static str>,
}

impl Parameter {
    pub fn string(description: &'static str) -> Self {
        Self {
            kind: "String",
            description,
            default: None,
            allowed_values: Vec::new(),
            allowed_pattern: None,
            constraint_description: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub description: &'static str,
    pub value: Expr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// The whole template. Logical ids are kept sorted, so synthesis is deterministic.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Template {
    #[serde(rename = "AWSTemplateFormatVersion")]
    format_version: &'static str,
    description: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    parameters: BTreeMap<String, Parameter>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    conditions: BTreeMap<String, Condition>,
    resources: BTreeMap<String, Resource>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    outputs: BTreeMap<String, Output>,
    #[serde(skip)]
    duplicates: Vec<String>,
}

impl Template {
    pub fn new(description: impl Into<String>) -> Self {
        Self {
            format_version: "2010-09-09",
            description: description.into(),
            ..Self::default()
        }
    }

    pub fn parameter(&mut self, id: &str, parameter: Parameter) -> Logical {
        self.note_duplicate(id);
        self.parameters.insert(id.to_owned(), parameter);
        Logical(id.to_owned())
    }

    pub fn condition(&mut self, name: &str, condition: Condition) -> String {
        if self.conditions.insert(name.to_owned(), condition).is_some() {
            self.duplicates.push(name.to_owned());
        }
        name.to_owned()
    }

    pub fn add(&mut self, id: &str, resource: Resource) -> Logical {
        self.note_duplicate(id);
        self.resources.insert(id.to_owned(), resource);
        Logical(id.to_owned())
    }

    pub fn output(&mut self, id: &str, output: Output) {
        if self.outputs.insert(id.to_owned(), output).is_some() {
            self.duplicates.push(id.to_owned());
        }
    }

    /// Unconditional outputs: (logical id, description, value).
    pub fn add_outputs<'a>(
        &mut self,
        outputs: impl IntoIterator<Item = (&'a str, &'static str, Expr)>,
    ) {
        for (id, description, value) in outputs {
            self.output(
                id,
                Output {
                    description,
                    value,
                    condition: None,
                },
            );
        }
    }

    pub fn resources(&self) -> &BTreeMap<String, Resource> {
        &self.resources
    }

    pub fn parameters(&self) -> &BTreeMap<String, Parameter> {
        &self.parameters
    }

    pub fn conditions(&self) -> &BTreeMap<String, Condition> {
        &self.conditions
    }

    /// A logical id names one parameter or resource, never both.
    fn note_duplicate(&mut self, id: &str) {
        if self.resources.contains_key(id) || self.parameters.contains_key(id) {
            self.duplicates.push(id.to_owned());
        }
    }

    /// The template as JSON, after checking that every reference in it resolves.
    pub fn to_json(&self) -> Result<Value, Vec<SynthError>> {
        let mut errors: Vec<SynthError> = self
            .duplicates
            .iter()
            .map(|id| SynthError::Duplicate { id: id.clone() })
            .collect();
        errors.extend(check::references(self));
        if errors.is_empty() {
            Ok(serde_json::to_value(self).expect("a template serializes"))
        } else {
            Err(errors)
        }
    }

    /// The properties of `id` as JSON: what the checks walk.
    pub(crate) fn json_of(value: &impl Serialize) -> Value {
        serde_json::to_value(value).expect("template parts serialize")
    }

    pub(crate) fn outputs(&self) -> &BTreeMap<String, Output> {
        &self.outputs
    }
}
