//! The example page in a real browser: headless Chromium driven through WebDriver, the page
//! served on another origin than the API. From the allowed origin an order goes 202 →
//! succeeded, an unknown dish shows its error, and a 409 and a 413 are readable by the page;
//! from an origin the API does not allow, the browser itself blocks the call and nothing is
//! stored. Once against the SQLite runtime, once against the Lambda mode (the deployable
//! zip, DynamoDB on moto). One browser session each: Chromium is heavy. The console page has
//! its own case (`console`), on the same machinery.

mod console;

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use axum::http::Method;
use fantoccini::{Client, ClientBuilder, Locator, wd::WebDriverCompatibleCommand};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use storefirst_harness::{Listening, until_some};

const API_KEY: &str = "browser-key";
/// Set by `cargo xtask test` (xtask/src/tools.rs): Debian's chromedriver and Chromium.
const CHROMEDRIVER_VAR: &str = "STOREFIRST_CHROMEDRIVER";
const CHROMIUM_VAR: &str = "STOREFIRST_CHROMIUM";
/// Where to save the page after its first order (`cargo xtask screenshot`).
const SCREENSHOT_VAR: &str = "STOREFIRST_SCREENSHOT";
/// Long enough for a cold start of the arm64 bootstrap under qemu.
const OUTCOME_TIMEOUT: Duration = Duration::from_secs(90);

fn tool(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: this test drives headless Chromium. Run it with `cargo xtask \
             test`, which installs Debian's chromium and chromium-driver with apt-get and sets \
             {CHROMEDRIVER_VAR} and {CHROMIUM_VAR}; or install them and set \
             {CHROMEDRIVER_VAR}=/usr/bin/chromedriver {CHROMIUM_VAR}=/usr/bin/chromium"
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver on a 127.0.0.1 port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn chromium() -> (Driver, Client) {
    let program = tool(CHROMEDRIVER_VAR);
    let port = free_port();
    let child = Command::new(&program)
        .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    until_some(Duration::from_secs(30), "chromedriver listens", || async {
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()
    })
    .await;
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": tool(CHROMIUM_VAR),
            // No sandbox: CI runs as root, where Chromium's sandbox refuses to start.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=900,1000"],
        },
        // The console, where Chromium reports what CORS blocked.
        "goog:loggingPrefs": { "browser": "ALL" },
    });
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities.as_object().unwrap().clone())
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("no Chromium session through {program}: {e}"));
    (driver, client)
}

/// The console messages since the last call: chromedriver's log endpoint (not in W3C
/// WebDriver, which has no console).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(json!({ "type": "browser" }).to_string()))
    }
}

async fn console(browser: &Client) -> Vec<String> {
    let entries = browser.issue_cmd(BrowserLog).await.unwrap();
    entries
        .as_array()
        .expect("a list of log entries")
        .iter()
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The example page on two ports: two origins, of which the API allows the first.
struct Pages {
    allowed: SocketAddr,
    refused: SocketAddr,
}

impl Pages {
    fn serve() -> Self {
        let page = || {
            storefirst_example_page::serve(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
                .unwrap()
        };
        Self {
            allowed: page(),
            refused: page(),
        }
    }

    fn allowed_origin(&self) -> String {
        format!("http://{}", self.allowed)
    }
}

/// `storefirst-local` allowing `pages`' first origin, with more arguments and variables.
fn spawn_local(db: &Path, pages: &Pages, args: &[&str], envs: &[(&str, &str)]) -> Listening {
    Listening::spawn(
        Command::new(env!("CARGO_BIN_EXE_storefirst-local"))
            .args(["--port", "0", "--api-key", API_KEY, "--log", "warn", "--db"])
            .arg(db)
            .args(["--cors-origin", &pages.allowed_origin()])
            .args(args)
            .envs(envs.iter().copied()),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The page's state: what it shows in its two boxes.
struct Page<'a> {
    browser: &'a Client,
}

impl Page<'_> {
    async fn open(&self, page: SocketAddr, api: &str) {
        self.browser
            .goto(&storefirst_example_page::url(page, api, API_KEY))
            .await
            .unwrap();
    }

    async fn set(&self, field: &str, value: &str) {
        self.browser
            .execute(
                "document.getElementById(arguments[0]).value = arguments[1]",
                vec![json!(field), json!(value)],
            )
            .await
            .unwrap();
    }

    async fn text(&self, id: &str) -> String {
        let value = self
            .browser
            .execute(
                "return document.getElementById(arguments[0]).textContent",
                vec![json!(id)],
            )
            .await
            .unwrap();
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Sends the form with this id (empty: POST) and body.
    async fn send(&self, id: &str, body: &str) {
        self.set("id", id).await;
        self.set("body", body).await;
        self.click("send").await;
    }

    async fn click(&self, id: &str) {
        self.browser
            .find(Locator::Id(id))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Waits until the box `id` shows something other than progress, and returns it.
    async fn settled(&self, id: &str) -> String {
        until_some(
            OUTCOME_TIMEOUT,
            &format!("the page's {id} settles"),
            || async {
                let text = self.text(id).await;
                let busy = text.is_empty() || text.ends_with('…');
                (!busy).then_some(text)
            },
        )
        .await
    }
}

fn order(dish: &str) -> String {
    json!({ "restaurant": "Roma", "items": [{ "dish": dish, "quantity": 2 }] }).to_string()
}

/// What the page reports for each case, against the API at `local`.
async fn the_page_against(local: &Listening, pages: &Pages, unique: &str) {
    let (_driver, browser) = chromium().await;
    let page = Page { browser: &browser };
    page.open(pages.allowed, &local.url).await;

    // The default order, as a visitor would send it.
    page.click("send").await;
    let outcome = page.settled("outcome").await;
    let answer = page.text("answer").await;
    assert!(
        answer.starts_with("202 Accepted: pending\nLocation: /requests/"),
        "the 202 and its Location are readable: {answer}"
    );
    assert!(
        outcome.starts_with("succeeded: {") && outcome.contains("total_cents"),
        "the outcome: {outcome}"
    );
    if let Ok(path) = std::env::var(SCREENSHOT_VAR) {
        let png = browser.screenshot().await.unwrap();
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }

    page.send("", &order("sushi")).await;
    let outcome = page.settled("outcome").await;
    assert!(
        outcome.starts_with("failed: ") && outcome.contains("sushi"),
        "the unknown dish's error: {outcome}"
    );

    let id = format!("browser-{unique}");
    page.send(&id, &order("margherita")).await;
    assert!(page.settled("outcome").await.starts_with("succeeded"));
    page.send(&id, &order("espresso")).await;
    let conflict = page.settled("answer").await;
    assert!(
        conflict.starts_with("409 ") && conflict.contains("different body"),
        "the 409 is readable: {conflict}"
    );

    let huge = json!({ "note": "x".repeat(300 * 1024) }).to_string();
    page.send("", &huge).await;
    let too_large = page.settled("answer").await;
    assert!(
        too_large.starts_with("413 "),
        "the 413 is readable: {too_large}"
    );
    assert!(
        console(&browser)
            .await
            .iter()
            .all(|line| !line.contains("CORS policy")),
        "nothing blocked from the allowed origin"
    );

    // Another origin: the preflight is refused, and the browser never sends the PUT.
    page.open(pages.refused, &local.url).await;
    let refused_id = format!("refused-{unique}");
    page.send(&refused_id, &order("margherita")).await;
    let refused = page.settled("answer").await;
    assert!(
        refused.starts_with("refused: Failed to fetch"),
        "the page cannot read any answer: {refused}"
    );
    let console = console(&browser).await;
    assert!(
        console.iter().any(|line| line.contains(&format!(
            "from origin 'http://{}' has been blocked by CORS policy",
            pages.refused
        ))),
        "the browser blocked it for CORS: {console:#?}"
    );
    let stored = reqwest::Client::new()
        .get(format!("{}/requests/{refused_id}", local.url))
        .header("x-api-key", API_KEY)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(stored, reqwest::StatusCode::NOT_FOUND, "nothing stored");
    browser.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let pages = Pages::serve();
    let local = spawn_local(&dir.path().join("browser.db"), &pages, &[], &[]);
    the_page_against(&local, &pages, "sqlite").await;
}

/// The deployable zip under qemu-user (natively on arm64), DynamoDB on moto.
#[cfg(feature = "aws")]
#[tokio::test(flavor = "multi_thread")]
async fn lambda() {
    use storefirst_harness::{lambda_mode, unique};

    let dir = tempfile::tempdir().unwrap();
    let pages = Pages::serve();
    let table = unique("browser");
    let (args, envs) = lambda_mode(&table);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let local = spawn_local(&dir.path().join("ledger.db"), &pages, &args, &envs);
    the_page_against(&local, &pages, &table).await;
}
