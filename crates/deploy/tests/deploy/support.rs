//! moto server, a recording proxy in front of it, and a fixture for one stack's files.

use std::{
    collections::BTreeMap,
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
};

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{
        Request, Response,
        header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING},
    },
};
use serde_json::{Value, json};
use storefirst_deploy::{Asset, Aws, Console, Deployment, RequireApproval};
use storefirst_domain::StreamSettings;
use storefirst_infra::stack::{
    ARTIFACT_BUCKET, NOTIFIER_KEY, STREAM_PROCESSING, STREAM_PROCESSOR_KEY,
};

pub use storefirst_harness::{REGION, moto_url, sdk_config, unique};

pub async fn aws(endpoint: &str) -> Aws {
    Aws::new(&sdk_config(endpoint).await)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// One HTTP call that went through the proxy.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    /// The form parameters of a query-protocol call (CloudFormation).
    pub params: Vec<(String, String)>,
}

impl Call {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn action(&self) -> Option<&str> {
        self.param("Action")
    }
}

/// A response the proxy gives instead of moto's.
pub struct Canned {
    status: u16,
    content_type: &'static str,
    /// A REST-JSON error's type, sent as `x-amzn-ErrorType` (API Gateway's protocol).
    error_type: Option<&'static str>,
    body: String,
}

impl Canned {
    /// A query-protocol (CloudFormation) answer.
    pub fn xml(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: "text/xml",
            error_type: None,
            body,
        }
    }

    /// A REST-JSON service's error, e.g. API Gateway's `BadRequestException`.
    pub fn json_error(status: u16, error_type: &'static str, body: String) -> Self {
        Self {
            status,
            content_type: "application/json",
            error_type: Some(error_type),
            body,
        }
    }
}

/// Answers a call instead of moto.
pub type Answer = Box<dyn Fn(&Call) -> Option<Canned> + Send + Sync>;

/// Whether a call names `stack`, by name or inside its ARN.
pub fn names(call: &Call, stack: &str) -> bool {
    call.param("StackName")
        .is_some_and(|name| name == stack || name.contains(&format!("/{stack}/")))
}

/// Lets `answer` take the calls that name `stack` once its change set was executed (moto
/// executes it; the answers are what CloudFormation would report next).
pub fn once_executed(
    stack: &str,
    answer: impl Fn(&Call) -> Option<Canned> + Send + Sync + 'static,
) -> Answer {
    let stack = stack.to_owned();
    // (a change set of the stack was created, it was executed)
    let state = Mutex::new((false, false));
    Box::new(move |call| {
        let mut state = state.lock().expect("no panics while answering");
        let ours = names(call, &stack);
        match call.action() {
            Some("CreateChangeSet") if ours => state.0 = true,
            Some("ExecuteChangeSet") if state.0 => state.1 = true,
            _ if ours && state.1 => return answer(call),
            _ => {}
        }
        None
    })
}

struct Shared {
    moto: String,
    client: reqwest::Client,
    calls: Mutex<Vec<Call>>,
    answer: Answer,
}

/// A proxy on 127.0.0.1 in front of moto that records every call, so a test can assert
/// what a deploy sent (no upload, no change set), and can answer some calls itself with
/// responses recorded from CloudFormation where moto cannot produce them.
pub struct Proxy {
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn to_moto() -> Self {
        Self::answering(Box::new(|_| None)).await
    }

    pub async fn answering(answer: Answer) -> Self {
        let shared = Arc::new(Shared {
            moto: moto_url(),
            client: reqwest::Client::new(),
            calls: Mutex::new(Vec::new()),
            answer,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let app = Router::new().fallback(forward).with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the proxy serves");
        });
        Self { url, shared, task }
    }

    /// The calls since the last `take`.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut self.shared.calls.lock().expect("no panics while recording"))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("a request body");
    let form = parts.headers.get(CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    });
    let call = Call {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        params: if form {
            form_urlencoded::parse(&bytes).into_owned().collect()
        } else {
            Vec::new()
        },
    };
    shared
        .calls
        .lock()
        .expect("no panics while recording")
        .push(call.clone());
    if let Some(canned) = (shared.answer)(&call) {
        let mut response = Response::builder()
            .status(canned.status)
            .header(CONTENT_TYPE, canned.content_type);
        if let Some(error_type) = canned.error_type {
            response = response.header("x-amzn-ErrorType", error_type);
        }
        return response.body(Body::from(canned.body)).expect("a response");
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forwarded = shared
        .client
        .request(parts.method.clone(), format!("{}{path}", shared.moto))
        .body(bytes);
    for (name, value) in &parts.headers {
        if name != HOST && name != CONTENT_LENGTH {
            forwarded = forwarded.header(name, value);
        }
    }
    let answer = forwarded.send().await.expect("moto answers");
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != TRANSFER_ENCODING && name != CONTENT_LENGTH && name != CONNECTION {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.expect("moto's body");
    response.body(Body::from(body)).expect("a response")
}

/// Object uploads among `calls`: S3 PUTs of a key, path style.
pub fn uploads(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.method == "PUT" && c.path.matches('/').count() >= 2)
        .map(|c| c.path.clone())
        .collect()
}

/// The physical id of each of the stack's resources, by logical id.
pub async fn physical_ids(stack: &str) -> BTreeMap<String, String> {
    let config = sdk_config(&moto_url()).await;
    aws_sdk_cloudformation::Client::new(&config)
        .list_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .expect("the stack exists")
        .stack_resource_summaries()
        .iter()
        .filter_map(|r| {
            Some((
                r.logical_resource_id()?.to_owned(),
                r.physical_resource_id().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

pub fn actions<'a>(calls: &'a [Call], action: &str) -> Vec<&'a Call> {
    calls
        .iter()
        .filter(|c| c.action() == Some(action))
        .collect()
}

/// A zip with a `bootstrap`: moto stores the code, it never runs it.
pub fn function_zip(script: &str) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("bootstrap", zip::write::SimpleFileOptions::default())
        .expect("a zip entry");
    zip.write_all(script.as_bytes()).expect("written");
    zip.finish().expect("a zip").into_inner()
}

/// The storefirst template with these stream settings.
pub fn template(settings: &StreamSettings) -> Value {
    storefirst_infra::stack::stack(settings)
        .to_json()
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// One test at a time on moto: its server iterates its stacks and change sets unguarded, so
/// calls from concurrent tests can fail with "dictionary changed size during iteration".
static MOTO: Mutex<()> = Mutex::new(());

/// One stack's names and files: a lambda directory with its zip, an outputs directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub stack: String,
    pub bootstrap: String,
    _moto: MutexGuard<'static, ()>,
}

impl Fixture {
    pub fn new(prefix: &str) -> Self {
        let fixture = Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
            stack: unique(prefix),
            bootstrap: unique(&format!("{prefix}-boot")),
            // A failed test poisons the lock; the next one can still use moto.
            _moto: MOTO.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
        };
        fixture.write_zip(&function_zip("#!/bin/sh\necho v1\n"));
        // CloudFormation on moto only stores the notifier's code: any bootstrap will do.
        let notifier = fixture.notifier_zip_path();
        std::fs::create_dir_all(notifier.parent().expect("a parent")).expect("a directory");
        std::fs::write(notifier, function_zip("#!/bin/sh\necho notifier\n"))
            .expect("the zip is written");
        fixture
    }

    /// The stream processor's zip, the one the tests change.
    pub fn zip_path(&self) -> PathBuf {
        self.dir
            .path()
            .join("lambda/stream-processor/bootstrap.zip")
    }

    pub fn notifier_zip_path(&self) -> PathBuf {
        self.dir.path().join("lambda/notifier/bootstrap.zip")
    }

    pub fn write_zip(&self, bytes: &[u8]) {
        let path = self.zip_path();
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
        std::fs::write(path, bytes).expect("the zip is written");
    }

    pub fn outputs_dir(&self) -> PathBuf {
        self.dir.path().join("outputs")
    }

    /// The real stack with these stream settings, its mappings switched off (moto would
    /// consume the stream and the queue without running the functions).
    pub fn deployment(&self, template: Value) -> Deployment {
        Deployment {
            stack: self.stack.clone(),
            template,
            parameters: BTreeMap::from([(STREAM_PROCESSING.to_owned(), "disabled".to_owned())]),
            bucket_parameter: Some(ARTIFACT_BUCKET.to_owned()),
            assets: vec![
                Asset {
                    parameter: STREAM_PROCESSOR_KEY.to_owned(),
                    path: self.zip_path(),
                },
                Asset {
                    parameter: NOTIFIER_KEY.to_owned(),
                    path: self.notifier_zip_path(),
                },
            ],
            bootstrap_stack: self.bootstrap.clone(),
            outputs_dir: self.outputs_dir(),
            yes: false,
            // A first deploy adds every IAM statement; the tests of approval set their own.
            require_approval: RequireApproval::Never,
            execution_role: None,
        }
    }
}

/// Creates the fixture's bootstrap stack as an administrator does (`deploy-ci-role`): a
/// deploy that runs as a deploy role only checks it.
pub async fn bootstrap_as_administrator(aws: &Aws, fixture: &Fixture) {
    let mut bootstrap = small_deployment(fixture, json!({}));
    bootstrap.template = storefirst_deploy::bootstrap::template();
    bootstrap.stack = fixture.bootstrap.clone();
    // Its own assets come from another bootstrap stack, which nothing else uses.
    bootstrap.bootstrap_stack = format!("{}-admin", fixture.bootstrap);
    let (console, captured) = Console::capture();
    if let Err(e) = storefirst_deploy::deploy(aws, &bootstrap, &console).await {
        panic!("the bootstrap stack: {e}\n{}", captured.text());
    }
}

/// A stack of these resources, without parameters or assets.
pub fn small_stack(resources: Value) -> Value {
    json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": resources,
    })
}

pub fn small_deployment(fixture: &Fixture, resources: Value) -> Deployment {
    let mut deployment = fixture.deployment(small_stack(resources));
    deployment.parameters.clear();
    deployment.bucket_parameter = None;
    deployment.assets.clear();
    deployment
}

/// API Gateway calls among `calls` that change the account's settings.
pub fn account_updates(calls: &[Call]) -> Vec<&Call> {
    calls
        .iter()
        .filter(|c| c.method == "PATCH" && c.path == "/account")
        .collect()
}

async fn apigateway() -> aws_sdk_apigateway::Client {
    aws_sdk_apigateway::Client::new(&sdk_config(&moto_url()).await)
}

/// The account's API Gateway CloudWatch Logs role on moto, `""` for none.
pub async fn account_logs_role() -> String {
    apigateway()
        .await
        .get_account()
        .send()
        .await
        .expect("moto answers GetAccount")
        .cloudwatch_role_arn()
        .unwrap_or_default()
        .to_owned()
}

/// Sets the account's API Gateway CloudWatch Logs role on moto. moto keeps one setting per
/// region for every test, and takes `""` for none (AWS refuses to unset it): the tests that
/// read it hold the [`Fixture`]'s lock and start from a value of their own.
pub async fn set_account_logs_role(role: &str) {
    apigateway()
        .await
        .update_account()
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/cloudwatchRoleArn")
                .value(role)
                .build(),
        )
        .send()
        .await
        .expect("moto answers UpdateAccount");
}

/// The ARN of the role the bootstrap stack made for API Gateway (moto's account id).
pub async fn bootstrap_logs_role(bootstrap: &str) -> String {
    let name = &physical_ids(bootstrap).await["ApiGatewayLogsRole"];
    format!("arn:aws:iam::123456789012:role/{name}")
}

/// moto reads the service and region from the credential scope; it checks no signature.
pub fn authorization(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=testing/20250101/{REGION}/{service}/aws4_request, \
         SignedHeaders=host, Signature=0"
    )
}
