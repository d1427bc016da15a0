//! The execution environment against a real runtime: this test binary itself, which acts
//! as a Lambda runtime when started with `AWS_LAMBDA_RUNTIME_API` (misbehaving as
//! `RUNTIME_MODE` says), and runs the tests otherwise.

use std::{
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    process::{ExitCode, Stdio},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};
use storefirst_lambda_env::{
    Bootstrap, BootstrapError, Call, FunctionConfig, Identity, InvokeError, LambdaFunction, Reply,
    RuntimeApi,
};

const MODE_VAR: &str = "RUNTIME_MODE";

fn main() -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match std::env::var("AWS_LAMBDA_RUNTIME_API") {
        Ok(api) => runtime.block_on(serve_as_runtime(api)),
        Err(_) => runtime.block_on(run_tests()),
    }
}

type Test = Pin<Box<dyn Future<Output = ()> + Send>>;

async fn run_tests() -> ExitCode {
    // Each test by its name.
    macro_rules! tests {
        ($($test:ident),* $(,)?) => { [$((stringify!($test), Box::pin($test()) as Test)),*] };
    }
    let tests = tests![
        an_invocation_gets_lambdas_headers_and_variables,
        a_crash_or_a_timeout_restarts_the_environment,
        a_function_error_keeps_the_environment,
        an_init_error_fails_every_start,
        the_runtime_api_times_a_child_the_caller_starts,
        a_zips_native_bootstrap_runs_as_it_is,
    ];
    // `cargo test -p storefirst-lambda-env -- <part of a name>` runs those only.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = Vec::new();
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let outcome = tokio::spawn(test).await;
        println!(
            "test {name} ... {}",
            if outcome.is_ok() { "ok" } else { "FAILED" }
        );
        if outcome.is_err() {
            failed.push(name);
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("failed: {failed:?}");
        ExitCode::FAILURE
    }
}

/// A runtime as `RUNTIME_MODE` says: `init-error` reports an init error and exits; `error`
/// reports a function error for every invocation; the others answer with the headers, the
/// event and some variables, and on the second invocation `crash` exits and `hang` hangs.
async fn serve_as_runtime(api: String) -> ExitCode {
    let mode = std::env::var(MODE_VAR).unwrap_or_default();
    let base = format!("http://{api}/2018-06-01/runtime");
    let client = reqwest::Client::new();
    if mode == "init-error" {
        let error =
            json!({"errorMessage": "TABLE_NAME is not set", "errorType": "Runtime.InitError"});
        let _ = client
            .post(format!("{base}/init/error"))
            .json(&error)
            .send()
            .await;
        return ExitCode::FAILURE;
    }
    for n in 1.. {
        let Ok(next) = client.get(format!("{base}/invocation/next")).send().await else {
            return ExitCode::from(2);
        };
        let headers: serde_json::Map<String, Value> = next
            .headers()
            .iter()
            .filter(|(name, _)| name.as_str().starts_with("lambda-runtime-"))
            .map(|(name, value)| (name.to_string(), json!(value.to_str().unwrap_or_default())))
            .collect();
        let event: Value = next.json().await.unwrap_or_default();
        match (mode.as_str(), n) {
            ("crash", 2..) => return ExitCode::from(3),
            ("hang", 2..) => tokio::time::sleep(Duration::from_secs(600)).await,
            _ => {}
        }
        let env: serde_json::Map<String, Value> = [
            "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "AWS_REGION",
            "LAMBDA_TASK_ROOT",
            "GREETING",
        ]
        .into_iter()
        .map(|name| (name.to_owned(), json!(std::env::var(name).ok())))
        .collect();
        let id = headers["lambda-runtime-aws-request-id"]
            .as_str()
            .unwrap_or_default();
        let outcome = if mode == "error" { "error" } else { "response" };
        let body = json!({ "headers": headers, "event": event, "env": env });
        let _ = client
            .post(format!("{base}/invocation/{id}/{outcome}"))
            .body(body.to_string())
            .send()
            .await;
    }
    ExitCode::SUCCESS
}

fn identity() -> Identity {
    Identity {
        name: "echo".into(),
        region: "eu-west-1".into(),
        memory_mb: 256,
    }
}

fn this_binary() -> PathBuf {
    std::env::current_exe().expect("the test binary's path")
}

fn function(bootstrap: Bootstrap, mode: &str, timeout: Duration) -> LambdaFunction {
    LambdaFunction::new(FunctionConfig {
        bootstrap,
        identity: identity(),
        timeout,
        env: vec![
            (MODE_VAR.into(), mode.into()),
            ("GREETING".into(), "hello".into()),
        ],
    })
}

fn native(mode: &str, timeout: Duration) -> LambdaFunction {
    function(
        Bootstrap::native(&this_binary(), "this test binary"),
        mode,
        timeout,
    )
}

fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_millis()).unwrap()
}

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: not JSON: {body}"))
}

async fn an_invocation_gets_lambdas_headers_and_variables() {
    let timeout = Duration::from_secs(30);
    let function = native("echo", timeout);
    let before = now_ms();
    let first = parse(&function.invoke(json!({ "n": 1 })).await.unwrap());
    let headers = &first["headers"];
    let deadline: u64 = headers["lambda-runtime-deadline-ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (before + 29_000..=now_ms() + 30_000).contains(&deadline),
        "the deadline is the timeout from the invocation: {first}"
    );
    assert_eq!(
        headers["lambda-runtime-invoked-function-arn"],
        identity().arn()
    );
    assert_eq!(
        identity().arn(),
        "arn:aws:lambda:eu-west-1:123456789012:function:echo"
    );
    assert!(
        headers["lambda-runtime-trace-id"]
            .as_str()
            .unwrap()
            .starts_with("Root=1-"),
        "{first}"
    );
    assert_eq!(first["event"], json!({ "n": 1 }));
    let task_root = this_binary().parent().unwrap().display().to_string();
    assert_eq!(
        first["env"],
        json!({
            "AWS_LAMBDA_FUNCTION_NAME": "echo",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_REGION": "eu-west-1",
            "LAMBDA_TASK_ROOT": task_root,
            "GREETING": "hello",
        })
    );
    let second = parse(&function.invoke(json!({ "n": 2 })).await.unwrap());
    assert_eq!(second["event"], json!({ "n": 2 }));
    assert_ne!(
        second["headers"]["lambda-runtime-aws-request-id"],
        headers["lambda-runtime-aws-request-id"],
        "each invocation has its own request id"
    );
    assert_eq!(
        function.starts(),
        1,
        "a warm environment takes the next invocation"
    );
}

async fn a_crash_or_a_timeout_restarts_the_environment() {
    for (mode, expected) in [("crash", "exited"), ("hang", "timed out after 1s")] {
        let function = native(mode, Duration::from_secs(1));
        function.invoke(json!({})).await.unwrap();
        let error = function.invoke(json!({})).await.unwrap_err();
        assert!(error.to_string().contains(expected), "{mode}: {error}");
        assert_eq!(function.starts(), 1, "{mode}");
        function.invoke(json!({})).await.unwrap();
        assert_eq!(
            function.starts(),
            2,
            "{mode}: a new process took the next invocation"
        );
    }
}

async fn a_function_error_keeps_the_environment() {
    let function = native("error", Duration::from_secs(5));
    for _ in 0..2 {
        let error = function.invoke(json!({ "n": 1 })).await.unwrap_err();
        let InvokeError::Function(body) = error else {
            panic!("not a function error: {error}");
        };
        assert_eq!(parse(&body)["event"], json!({ "n": 1 }));
    }
    assert_eq!(function.starts(), 1);
}

async fn an_init_error_fails_every_start() {
    let function = native("init-error", Duration::from_secs(1));
    for starts in 1..=2 {
        let error = function.invoke(json!({})).await.unwrap_err();
        assert!(
            matches!(error, InvokeError::Init(ref body) if body.contains("TABLE_NAME")),
            "{error}"
        );
        assert_eq!(function.starts(), starts);
    }
}

/// What the stream-processor's tests and the bench do: serve the API, start the runtime
/// with their own variables, and read its calls and their times.
async fn the_runtime_api_times_a_child_the_caller_starts() {
    let mut api = RuntimeApi::serve(&identity()).await.unwrap();
    let mut child = tokio::process::Command::new(this_binary())
        .env_clear()
        .envs(identity().environment(api.address()))
        .env(MODE_VAR, "echo")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let limit = Duration::from_secs(30);
    let first = tokio::time::timeout(limit, api.call()).await.unwrap();
    assert!(
        matches!(first, Some((_, Call::Next))),
        "init is over: {first:?}"
    );
    let id = api.invoke(json!({ "n": 1 }), limit).unwrap();
    assert!(
        api.invoke(json!({ "n": 2 }), limit).is_err(),
        "one invocation at a time"
    );
    let answer = tokio::time::timeout(limit, api.answer(&id))
        .await
        .unwrap()
        .unwrap();
    let Reply::Response(body) = &answer.reply else {
        panic!("not a response: {answer:?}");
    };
    assert_eq!(
        parse(body)["headers"]["lambda-runtime-aws-request-id"],
        id.as_str()
    );
    let delivered = answer.delivered.expect("the invocation was delivered");
    assert!(delivered <= answer.at, "{answer:?}");
    child.kill().await.unwrap();
}

async fn a_zips_native_bootstrap_runs_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("function.zip");
    write_zip(
        &zip_path,
        "bootstrap",
        &std::fs::read(this_binary()).unwrap(),
    );
    let bootstrap = Bootstrap::from_zip(&zip_path, &dir.path().join("unzipped"), None).unwrap();
    assert_eq!(bootstrap.program, dir.path().join("unzipped/bootstrap"));
    assert!(bootstrap.args.is_empty(), "{bootstrap:?}");
    let function = function(bootstrap, "echo", Duration::from_secs(30));
    let body = parse(&function.invoke(json!({})).await.unwrap());
    let unzipped = dir.path().join("unzipped").display().to_string();
    assert_eq!(body["env"]["LAMBDA_TASK_ROOT"], unzipped.as_str());

    write_zip(&zip_path, "handler", b"");
    let error = Bootstrap::from_zip(&zip_path, dir.path(), None).unwrap_err();
    assert!(
        matches!(error, BootstrapError::Zip { ref reason, .. } if reason.contains("no `bootstrap`")),
        "{error}"
    );
}

fn write_zip(path: &Path, name: &str, bytes: &[u8]) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file(name, options).unwrap();
    zip.write_all(bytes).unwrap();
    zip.finish().unwrap();
}
