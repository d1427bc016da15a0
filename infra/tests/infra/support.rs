//! What the test areas share: the synthesized template, the VTL harness, and moto server
//! spoken to as API Gateway speaks to DynamoDB (the JSON protocol, raw).

use std::{
    collections::BTreeMap,
    io::Write,
    process::{Command, Stdio},
    sync::OnceLock,
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use storefirst_harness::unique;
use storefirst_harness::{REGION, moto_url};

pub const VTL_PYTHON_VAR: &str = "STOREFIRST_VTL_PYTHON";

/// The synthesized template, as deployed.
pub fn template() -> &'static Value {
    static TEMPLATE: OnceLock<Value> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let text = storefirst_infra::synthesize().unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(&text).expect("synthesis writes JSON")
    })
}

pub fn resource(id: &str) -> &'static Value {
    let resource = &template()["Resources"][id];
    assert!(resource.is_object(), "the template has no resource {id}");
    resource
}

/// The resources of one type, with their logical ids.
pub fn resources_of(kind: &str) -> Vec<(&'static str, &'static Value)> {
    template()["Resources"]
        .as_object()
        .expect("resources")
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), r))
        .collect()
}

pub fn required_var(name: &str, what: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs {what}. Run the tests with `cargo xtask test`, \
             which installs it under target/tools and sets {name}"
        )
    })
}

/// One template rendering: the template, the method request, and `$context`.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    pub template: String,
    pub body: String,
    pub params: Value,
    pub context: Value,
    /// `$stageVariables`.
    pub stage_variables: Value,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Rendered {
    pub output: Option<String>,
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub error: Option<String>,
}

/// Runs `script` (beside this file) on the VTL engine's Python with `input` on its stdin;
/// its stdout, parsed as JSON.
pub fn run_python<T: serde::de::DeserializeOwned>(script: &str, input: &[u8]) -> T {
    let python = required_var(
        VTL_PYTHON_VAR,
        "a Python with airspeed-ext (the VTL engine) and jsonschema",
    );
    let path = format!("{}/tests/infra/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(&python)
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run {python}: {e}"));
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input)
        .unwrap_or_else(|e| panic!("{script} reads its input: {e}"));
    let output = child.wait_with_output().expect("the script runs");
    assert!(
        output.status.success(),
        "{script} failed (`cargo xtask test` installs its Python): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{script} answers JSON: {e}"))
}

/// Renders every case with airspeed-ext (render.py beside this file), in one process.
pub fn render(cases: &[Case]) -> Vec<Rendered> {
    let input = serde_json::to_vec(cases).expect("cases serialize");
    let rendered: Vec<Rendered> = run_python("render.py", &input);
    for (case, rendered) in cases.iter().zip(&rendered) {
        if let Some(error) = &rendered.error {
            panic!("the template did not render: {error}\n{}", case.template);
        }
    }
    rendered
}

/// moto server, spoken to without an SDK, as API Gateway's integrations do.
pub struct Moto {
    pub url: String,
    client: reqwest::Client,
}

impl Moto {
    pub fn new() -> Self {
        Self {
            url: moto_url(),
            client: reqwest::Client::new(),
        }
    }

    /// moto reads the service and region from the credential scope; it checks no signature.
    fn authorization(service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=test/20250101/{REGION}/{service}/aws4_request, \
             SignedHeaders=host, Signature=0"
        )
    }

    /// A DynamoDB call: the status and the JSON answer.
    pub async fn dynamodb(&self, action: &str, body: &str) -> (u16, Value) {
        let response = self
            .client
            .post(&self.url)
            .header("X-Amz-Target", format!("DynamoDB_20120810.{action}"))
            .header("Content-Type", "application/x-amz-json-1.0")
            .header("Authorization", Self::authorization("dynamodb"))
            .body(body.to_owned())
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto at {}: {e}", self.url));
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("moto answered {action} with {status}: {text}"));
        (status, json)
    }

    /// A table defined as the template defines the requests table, under a fresh name.
    pub async fn create_table(&self) -> String {
        let properties = &resource("RequestsTable")["Properties"];
        let name = unique("requests");
        let request = json!({
            "TableName": name,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties["BillingMode"],
        });
        let (status, answer) = self.dynamodb("CreateTable", &request.to_string()).await;
        assert_eq!(status, 200, "CreateTable: {answer}");
        name
    }
}
