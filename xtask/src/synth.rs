//! `cargo xtask synth`: writes the CloudFormation template, its diagram and the API's OpenAPI
//! document; the linters.

use anyhow::{Context, bail};
use clap::Args;
use storefirst_pipeline::openapi;
use xshell::{Shell, cmd};

/// Synthesizes the stack (infra/) to infra/storefirst.template.json and its Mermaid
/// diagram to infra/storefirst.mmd, and writes the HTTP contract's OpenAPI document beside
/// them (infra/storefirst.openapi.json).
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
            (openapi::DOCUMENT_PATH, openapi::text().to_owned()),
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

/// The checkov checks to skip, from `infra/checkov-skips.txt` (`ID: reason` per line).
const CHECKOV_SKIPS: &str = "infra/checkov-skips.txt";

/// Lints the committed template: cfn-lint must report no error and no warning, checkov
/// must pass every check but the skipped ones.
pub fn lint(sh: &Shell) -> anyhow::Result<()> {
    let template = storefirst_infra::TEMPLATE_PATH;
    let cfn_lint = crate::tools::CFN_LINT.ensure(sh)?;
    crate::step(format!("cfn-lint {template}"));
    cmd!(sh, "{cfn_lint}/cfn-lint --format parseable {template}")
        .run()
        .context("cfn-lint found problems in the template: fix the stack in infra/src, then run `cargo xtask synth`")?;

    let skips = checkov_skips(&sh.read_file(CHECKOV_SKIPS)?)?;
    let checkov = crate::tools::CHECKOV.ensure(sh)?;
    crate::step(format!(
        "checkov {template} (skipping {skips}, see {CHECKOV_SKIPS})"
    ));
    // --skip-download: no network; the checks ship with the package.
    cmd!(
        sh,
        "{checkov}/checkov --file {template} --framework cloudformation --compact --quiet --skip-download --skip-check {skips}"
    )
    .run()
    .with_context(|| {
        format!(
            "checkov failed checks on the template: fix the stack in infra/src and run `cargo xtask synth`, \
             or skip the check in {CHECKOV_SKIPS} with the reason"
        )
    })?;
    Ok(())
}

/// The skipped check ids, comma-separated; every one needs its reason.
fn checkov_skips(text: &str) -> anyhow::Result<String> {
    let mut ids = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((id, reason)) if !id.trim().is_empty() && !reason.trim().is_empty() => {
                ids.push(id.trim())
            }
            _ => bail!("{CHECKOV_SKIPS}: `{line}` needs the form `CHECK_ID: why it is skipped`"),
        }
    }
    Ok(ids.join(","))
}

#[cfg(test)]
mod tests {
    use super::{CHECKOV_SKIPS, checkov_skips};

    #[test]
    fn every_skipped_check_has_a_reason() {
        let file = "# comment\n\nCKV_A: why\n  CKV_B : because  \n";
        assert_eq!(checkov_skips(file).unwrap(), "CKV_A,CKV_B");
        for bad in ["CKV_C", "CKV_C:", "CKV_C:   ", ": reason"] {
            let error = checkov_skips(bad).unwrap_err().to_string();
            assert!(error.contains("CHECK_ID: why"), "{bad}: {error}");
        }
        let committed = std::fs::read_to_string(crate::project_root().join(CHECKOV_SKIPS))
            .expect("the skips file");
        assert!(checkov_skips(&committed).is_ok());
    }
}
