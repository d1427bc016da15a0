//! A Mermaid diagram of the synthesized template: resources grouped by service, an arrow
//! for each reference (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `DependsOn`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::referenced_ids;

/// The diagram of a synthesized template (the JSON `synthesize` writes).
pub fn mermaid(template: &Value) -> String {
    let empty = serde_json::Map::new();
    let resources = template["Resources"].as_object().unwrap_or(&empty);
    let parameters = template["Parameters"].as_object().unwrap_or(&empty);
    let mut out = String::from("flowchart LR\n");
    let mut services: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for (id, resource) in resources {
        let kind = resource["Type"].as_str().unwrap_or_default();
        let mut parts = kind.split("::").skip(1);
        let service = parts.next().unwrap_or("Other");
        services
            .entry(service)
            .or_default()
            .push((id, parts.next().unwrap_or(kind)));
    }
    for id in parameters.keys() {
        out.push_str(&format!("  {id}([\"{id}<br/>parameter\"])\n"));
    }
    for (service, members) in &services {
        out.push_str(&format!("  subgraph {service}\n"));
        for (id, kind) in members {
            out.push_str(&format!("    {id}[\"{id}<br/>{kind}\"]\n"));
        }
        out.push_str("  end\n");
    }
    for (id, resource) in resources {
        let references = referenced_ids(&resource["Properties"]);
        let mut order_only: Vec<&str> = resource["DependsOn"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|target| !references.iter().any(|r| r == target))
            .collect();
        order_only.sort();
        // A reference is a solid arrow; a DependsOn that only orders creation, dotted.
        for target in &references {
            out.push_str(&format!("  {id} --> {target}\n"));
        }
        for target in order_only {
            out.push_str(&format!("  {id} -.-> {target}\n"));
        }
    }
    out
}
