use anyhow::Context;
use clap::Args;
use xshell::Shell;

/// Synthesizes the stack (infra/) to infra/storefirst.template.json and its Mermaid
/// diagram to infra/storefirst.mmd.
#[derive(Args)]
pub struct Synth {}

impl Synth {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let template = storefirst_infra::synthesize()
            .context("fix the stack in infra/src and run `cargo xtask synth` again")?;
        let json: serde_json::Value = serde_json::from_str(&template)?;
        let root = crate::project_root();
        for (path, text) in [
            (storefirst_infra::TEMPLATE_PATH, template.clone()),
            (
                storefirst_infra::DIAGRAM_PATH,
                storefirst_infra::mermaid(&json),
            ),
        ] {
            let path = root.join(path);
            sh.write_file(&path, text)?;
            crate::step(format!("wrote {}", path.display()));
        }
        let resources = json["Resources"].as_object().map_or(0, |r| r.len());
        crate::step(format!(
            "{resources} resources, {} bytes of template",
            template.len()
        ));
        Ok(())
    }
}
