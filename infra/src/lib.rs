//! storefirst's AWS stack as typed Rust (CDK style), synthesized to a CloudFormation
//! template: `cargo xtask synth` writes it to `infra/storefirst.template.json`.

pub mod ci_role;
mod mermaid;
pub mod model;
pub mod stack;

use storefirst_domain::StreamSettings;

pub use mermaid::mermaid;
pub use model::SynthError;

/// Where the synthesized template and its diagram are committed, relative to the
/// workspace root.
pub const TEMPLATE_PATH: &str = "infra/storefirst.template.json";
pub const DIAGRAM_PATH: &str = "infra/storefirst.mmd";

/// The stack with the default stream settings.
pub fn template() -> model::Template {
    stack::stack(&StreamSettings::DEFAULT)
}

/// The template as pretty JSON with a final newline, after the synth-time checks.
pub fn synthesize() -> Result<String, SynthErrors> {
    let json = template().to_json().map_err(SynthErrors)?;
    let mut text = serde_json::to_string_pretty(&json).expect("JSON serializes");
    text.push('\n');
    Ok(text)
}

/// Every problem synthesis found, one per line.
#[derive(Debug, thiserror::Error)]
#[error("the stack does not synthesize:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
pub struct SynthErrors(pub Vec<SynthError>);
