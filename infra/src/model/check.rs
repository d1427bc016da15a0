//! Synth-time checks: every reference in a template resolves, so a typo fails here and not
//! half-way through a deployment.

use serde_json::Value;

use crate::model::{Condition, PSEUDO_PARAMETERS, Template};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SynthError {
    #[error(
        "logical id {id} is defined twice: give each resource, parameter, condition and output its own name"
    )]
    Duplicate { id: String },
    #[error(
        "{from} refers to {to}, which is not a resource, parameter or pseudo parameter of the template: define it or fix the name"
    )]
    UndefinedReference { from: String, to: String },
    #[error(
        "{from} reads attribute {attribute} of {resource} ({kind}), which has only {known}: use one of those"
    )]
    UnknownAttribute {
        from: String,
        resource: String,
        kind: &'static str,
        attribute: String,
        known: String,
    },
    #[error(
        "{from}: the Fn::Sub variable ${{{variable}}} resolves to nothing: add it to the variable map, define a resource or parameter of that name, or write ${{!{variable}}} for the literal text"
    )]
    UnresolvedSubVariable { from: String, variable: String },
    #[error(
        "{from} uses condition {condition}, which is not defined: add it to the template's conditions"
    )]
    UndefinedCondition { from: String, condition: String },
    #[error(
        "{from} refers to {to}, which exists only when condition {condition} holds: give {from} the same condition or wrap the reference in Fn::If on it"
    )]
    ConditionalReference {
        from: String,
        to: String,
        condition: String,
    },
    #[error("{from}: malformed {function}: {problem}")]
    Malformed {
        from: String,
        function: &'static str,
        problem: String,
    },
}

/// Every problem with the references of `template`.
pub fn references(template: &Template) -> Vec<SynthError> {
    let mut walker = Walker {
        template,
        errors: Vec::new(),
    };
    for (name, condition) in template.conditions() {
        walker.walk(&Template::json_of(condition), name, &mut Vec::new());
    }
    for (id, resource) in template.resources() {
        let json = Template::json_of(resource);
        let mut guards = Vec::new();
        if let Some(condition) = resource.resource_condition() {
            walker.condition(id, condition);
            guards.push(condition.to_owned());
        }
        for target in json["DependsOn"].as_array().into_iter().flatten() {
            walker.resource(id, target.as_str().unwrap_or_default(), &guards);
        }
        walker.walk(&json["Properties"], id, &mut guards);
    }
    for (id, output) in template.outputs() {
        let mut guards = Vec::new();
        if let Some(condition) = &output.condition {
            walker.condition(id, condition);
            guards.push(condition.clone());
        }
        walker.walk(&Template::json_of(&output.value), id, &mut guards);
    }
    walker.errors
}

struct Walker<'a> {
    template: &'a Template,
    errors: Vec<SynthError>,
}

impl Walker<'_> {
    /// Walks `value`; `guards` are the conditions known to hold at this point (the
    /// referrer's own, and those of enclosing `Fn::If` branches).
    fn walk(&mut self, value: &Value, from: &str, guards: &mut Vec<String>) {
        match value {
            Value::Array(items) => items.iter().for_each(|item| self.walk(item, from, guards)),
            Value::Object(map) if map.len() == 1 => {
                let (key, argument) = map.iter().next().expect("one entry");
                match key.as_str() {
                    "Ref" => self.reference(from, argument.as_str().unwrap_or_default(), guards),
                    "Fn::GetAtt" => self.get_att(from, argument, guards),
                    "Fn::Sub" => self.sub(from, argument, guards),
                    "Fn::If" => self.fn_if(from, argument, guards),
                    _ => self.walk(argument, from, guards),
                }
            }
            Value::Object(map) => map.values().for_each(|item| self.walk(item, from, guards)),
            _ => {}
        }
    }

    fn reference(&mut self, from: &str, to: &str, guards: &[String]) {
        if PSEUDO_PARAMETERS.contains(&to) || self.template.parameters().contains_key(to) {
            return;
        }
        self.resource(from, to, guards);
    }

    fn resource(&mut self, from: &str, to: &str, guards: &[String]) {
        match self.template.resources().get(to) {
            None => self.errors.push(SynthError::UndefinedReference {
                from: from.into(),
                to: to.into(),
            }),
            Some(target) => {
                if let Some(condition) = target.resource_condition()
                    && !guards.iter().any(|guard| guard == condition)
                {
                    self.errors.push(SynthError::ConditionalReference {
                        from: from.into(),
                        to: to.into(),
                        condition: condition.into(),
                    });
                }
            }
        }
    }

    fn get_att(&mut self, from: &str, argument: &Value, guards: &[String]) {
        let (Some(id), Some(attribute)) = (argument[0].as_str(), argument[1].as_str()) else {
            return self.malformed(from, "Fn::GetAtt", "expected [logical id, attribute]");
        };
        self.attribute(from, id, attribute, guards);
    }

    fn attribute(&mut self, from: &str, id: &str, attribute: &str, guards: &[String]) {
        self.resource(from, id, guards);
        if let Some(target) = self.template.resources().get(id)
            && !target.attributes().contains(&attribute)
        {
            self.errors.push(SynthError::UnknownAttribute {
                from: from.into(),
                resource: id.into(),
                kind: target.kind(),
                attribute: attribute.into(),
                known: target.attributes().join(", "),
            });
        }
    }

    fn sub(&mut self, from: &str, argument: &Value, guards: &mut Vec<String>) {
        let (text, variables) = match argument {
            Value::String(text) => (text.as_str(), None),
            Value::Array(parts) => match (parts.first(), parts.get(1)) {
                (Some(Value::String(text)), Some(Value::Object(variables))) => {
                    (text.as_str(), Some(variables))
                }
                _ => {
                    return self.malformed(from, "Fn::Sub", "expected [text, {variables}]");
                }
            },
            _ => return self.malformed(from, "Fn::Sub", "expected text or [text, {variables}]"),
        };
        for variable in sub_variables(text) {
            if variables.is_some_and(|map| map.contains_key(variable)) {
                continue;
            }
            match variable.split_once('.') {
                Some((id, attribute)) => self.attribute(from, id, attribute, guards),
                None if PSEUDO_PARAMETERS.contains(&variable)
                    || self.template.parameters().contains_key(variable)
                    || self.template.resources().contains_key(variable) =>
                {
                    self.reference(from, variable, guards)
                }
                None => self.errors.push(SynthError::UnresolvedSubVariable {
                    from: from.into(),
                    variable: variable.into(),
                }),
            }
        }
        for value in variables.into_iter().flat_map(|map| map.values()) {
            self.walk(value, from, guards);
        }
    }

    fn fn_if(&mut self, from: &str, argument: &Value, guards: &mut Vec<String>) {
        let Some(condition) = argument[0].as_str() else {
            return self.malformed(from, "Fn::If", "expected [condition, then, else]");
        };
        self.condition(from, condition);
        guards.push(condition.to_owned());
        self.walk(&argument[1], from, guards);
        guards.pop();
        // The else branch holds where the condition does not: so do the conditions
        // defined as its negation.
        let negations = self.negations(condition);
        let depth = guards.len();
        guards.extend(negations);
        self.walk(&argument[2], from, guards);
        guards.truncate(depth);
    }

    /// The conditions that are `condition`'s negation, by definition.
    fn negations(&self, condition: &str) -> Vec<String> {
        let conditions = self.template.conditions();
        let Some(defined) = conditions.get(condition) else {
            return Vec::new();
        };
        conditions
            .iter()
            .filter(|(_, other)| match (other, defined) {
                (Condition::Not(inner), _) => **inner == *defined,
                (_, Condition::Not(inner)) => **inner == **other,
                _ => false,
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn condition(&mut self, from: &str, condition: &str) {
        if !self.template.conditions().contains_key(condition) {
            self.errors.push(SynthError::UndefinedCondition {
                from: from.into(),
                condition: condition.into(),
            });
        }
    }

    fn malformed(&mut self, from: &str, function: &'static str, problem: &str) {
        self.errors.push(SynthError::Malformed {
            from: from.into(),
            function,
            problem: problem.into(),
        });
    }
}

/// The variables `${...}` of an `Fn::Sub` text; `${!...}` is literal text.
pub fn sub_variables(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let variable = &after[..end];
        if !variable.starts_with('!') {
            found.push(variable);
        }
        rest = &after[end + 1..];
    }
    found
}

/// The logical ids and parameters `value` refers to (`Ref`, `Fn::GetAtt`, `Fn::Sub`),
/// pseudo parameters and `Fn::Sub` map variables aside.
pub fn referenced_ids(value: &Value) -> Vec<String> {
    fn collect(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Array(items) => items.iter().for_each(|item| collect(item, found)),
            Value::Object(map) => {
                if let Some(Value::String(id)) = map.get("Ref") {
                    found.push(id.clone());
                }
                if let Some(Value::String(id)) = map.get("Fn::GetAtt").and_then(|a| a.get(0)) {
                    found.push(id.clone());
                }
                let sub = map.get("Fn::Sub");
                let (text, variables) = match sub {
                    Some(Value::String(text)) => (Some(text.as_str()), None),
                    Some(Value::Array(parts)) => (
                        parts.first().and_then(Value::as_str),
                        parts.get(1).and_then(Value::as_object),
                    ),
                    _ => (None, None),
                };
                for variable in text.map(sub_variables).unwrap_or_default() {
                    if !variables.is_some_and(|v| v.contains_key(variable)) {
                        found.push(variable.split('.').next().unwrap_or(variable).to_owned());
                    }
                }
                map.values().for_each(|item| collect(item, found));
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    collect(value, &mut found);
    found.retain(|id| !PSEUDO_PARAMETERS.contains(&id.as_str()));
    found.sort();
    found.dedup();
    found
}
