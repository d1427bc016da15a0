//! `cargo xtask redrive`: reprocesses stuck requests, locally or in a deployed table.

use anyhow::Context;
use clap::Args;
use xshell::{Shell, cmd};

/// Reprocesses dead-lettered and stuck pending requests, after the processor is fixed: of
/// the local SQLite runtime, or of a DynamoDB table (`--table`, or `--stack` for the table
/// of a deployed stack); and redelivers the given-up webhooks (a stack's from its dead-letter
/// queue, the Lambda mode's from the queues it made for the table).
#[derive(Args)]
pub struct Redrive {
    /// SQLite database of the local runtime (relative to the workspace root); with a table,
    /// the stream ledger whose dead letters name items too, if it exists. Default: what
    /// `cargo xtask dev` uses for the same mode.
    #[arg(long, env = "STOREFIRST_DB")]
    db: Option<String>,
    /// A DynamoDB table (the default AWS configuration: AWS_ENDPOINT_URL, AWS_REGION,
    /// credentials): its pending items that failed before are processed again.
    #[arg(long, env = "STOREFIRST_DYNAMODB_TABLE", conflicts_with = "stack")]
    table: Option<String>,
    /// The table of a stack deployed with `cargo xtask deploy --stack NAME` (read from
    /// target/storefirst/<NAME>-outputs.json).
    #[arg(long)]
    stack: Option<String>,
}

impl Redrive {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let outputs = self
            .stack
            .as_deref()
            .map(|stack| stack_outputs(sh, stack))
            .transpose()?;
        let table = match (&self.table, &outputs) {
            (Some(table), _) => Some(table.clone()),
            (None, Some(outputs)) => Some(outputs.get("TableName")?),
            (None, None) => None,
        };
        // A stack's given-up webhooks wait in its queues; the Lambda mode's are found by
        // the table's name.
        let webhook_args: Vec<String> = match &outputs {
            Some(outputs) => vec![
                "--webhook-queue-url".into(),
                outputs.get("WebhookQueueUrl")?,
                "--webhook-dead-letters-url".into(),
                outputs.get("WebhookDeadLettersUrl")?,
            ],
            None => Vec::new(),
        };
        crate::dev::build_local(sh, table.is_some())?;
        let db = self
            .db
            .unwrap_or_else(|| crate::dev::default_db(table.is_some()).to_owned());
        let table_args: Vec<String> = match &table {
            Some(table) => {
                crate::step(format!(
                    "redriving the stuck requests of DynamoDB table {table}"
                ));
                vec!["--dynamodb-table".into(), table.clone()]
            }
            None => {
                crate::step(format!("redriving the stuck requests of {db}"));
                Vec::new()
            }
        };
        cmd!(
            sh,
            "target/release/storefirst-local redrive --log warn --db {db} {table_args...} {webhook_args...}"
        )
        .run()
        .context("redrive did not finish cleanly; the message above says what still fails")?;
        Ok(())
    }
}

/// The outputs of a deployed stack, as `cargo xtask deploy` wrote them.
struct StackOutputs {
    path: String,
    stack: String,
    outputs: serde_json::Value,
}

fn stack_outputs(sh: &Shell, stack: &str) -> anyhow::Result<StackOutputs> {
    let path = format!("target/storefirst/{stack}-outputs.json");
    let text = sh
        .read_file(&path)
        .with_context(|| format!("cannot read {path}: deploy the stack first with `cargo xtask deploy --stack {stack}`, or pass --table"))?;
    StackOutputs::parse(path, stack, &text)
}

impl StackOutputs {
    fn parse(path: String, stack: &str, text: &str) -> anyhow::Result<Self> {
        let outputs: serde_json::Value = serde_json::from_str(text)
            .with_context(|| format!("{path} is not JSON: deploy again"))?;
        Ok(Self {
            path,
            stack: stack.to_owned(),
            outputs,
        })
    }

    /// The output `name`.
    fn get(&self, name: &str) -> anyhow::Result<String> {
        let (path, stack) = (&self.path, &self.stack);
        self.outputs[stack][name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| {
                format!("{path} has no {name} output for {stack}: deploy again, or pass --table")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stacks_outputs_name_its_table_and_webhook_queues() {
        let text = r#"{"s1":{"TableName":"t","WebhookQueueUrl":"https://q","WebhookDeadLettersUrl":"https://d"}}"#;
        let outputs = StackOutputs::parse("o.json".into(), "s1", text).unwrap();
        assert_eq!(outputs.get("TableName").unwrap(), "t");
        assert_eq!(outputs.get("WebhookQueueUrl").unwrap(), "https://q");
        assert_eq!(outputs.get("WebhookDeadLettersUrl").unwrap(), "https://d");
        let missing = outputs.get("Nope").unwrap_err().to_string();
        assert!(
            missing.contains("o.json has no Nope output for s1"),
            "{missing}"
        );
        assert!(StackOutputs::parse("o.json".into(), "s1", "{").is_err());
    }
}
