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
        let mut targets = referenced_ids(&resource["Properties"]);
        for dependency in resource["DependsOn"].as_array().into_iter().flatten() {
            targets.extend(dependency.as_str().map(str::to_owned));
        }
        targets.sort();
        targets.dedup();
        for target in targets {
            let arrow = if resource["DependsOn"]
                .as_array()
                .is_some_and(|d| d.iter().any(|t| *t == *target))
                && !referenced_ids(&resource["Properties"]).contains(&target)
            {
                "-.->"
            } else {
                "-->"
            };
            out.push_str(&format!("  {id} {arrow} {target}\n"));
        }
    }
    out
}
