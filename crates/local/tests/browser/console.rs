//! The console page in headless Chromium, over the SQLite runtime in this process with a
//! kitchen that can be closed (its orders fail as transient errors until it opens): a
//! wrong key is refused, the right one connects; a POSTed order appears and turns
//! succeeded; a body full of `<script>` and quotes stays text; an order to the closed
//! kitchen is dead-lettered, and the redrive button redrives it once the kitchen opens.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use storefirst_app::{PendingRequest, ProcessError, Processor, RestaurantOrders};
use storefirst_harness::{eventually, until_some};
use storefirst_pipeline::Config;

use crate::{API_KEY, chromium};

/// Where to save the console once it shows a few requests (`cargo xtask screenshot`).
const SCREENSHOT_VAR: &str = "STOREFIRST_CONSOLE_SCREENSHOT";
const WAIT: Duration = Duration::from_secs(30);
/// Bytes the page (document, script, style) may weigh on its first load.
const PAGE_BUDGET: u64 = 24_000;

/// The sample processor, except that orders for the restaurant "Closed" fail as
/// unavailable until the kitchen opens.
#[derive(Clone, Default)]
struct Kitchen {
    open: Arc<AtomicBool>,
}

impl Processor for Kitchen {
    async fn process(&self, request: &PendingRequest) -> Result<Value, ProcessError> {
        let order: Value = serde_json::from_str(&request.body).unwrap_or_default();
        if order["restaurant"] == "Closed" && !self.open.load(Ordering::SeqCst) {
            return Err(ProcessError::Unavailable("the kitchen is closed".into()));
        }
        RestaurantOrders.process(request).await
    }
}

struct Console<'a> {
    browser: &'a Client,
    api: SocketAddr,
}

impl Console<'_> {
    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.browser.execute(script, args).await.unwrap()
    }

    async fn text(&self, id: &str) -> String {
        let text = self
            .js(
                "return document.getElementById(arguments[0]).textContent",
                vec![json!(id)],
            )
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    async fn connect(&self, key: &str) {
        let field = self.browser.find(Locator::Id("key")).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(key).await.unwrap();
        // The keyboard's way: Enter in the field submits the form.
        field.send_keys("\u{E007}").await.unwrap();
    }

    async fn until_text(&self, id: &str, what: &str, holds: impl Fn(&str) -> bool) -> String {
        until_some(WAIT, what, || async {
            let text = self.text(id).await;
            holds(&text).then_some(text)
        })
        .await
    }

    /// The status the list shows for `id`, if it lists it.
    async fn status(&self, id: &str) -> Option<String> {
        let status = self
            .js(
                "const row = [...document.querySelectorAll('#requests > li')]
                     .find(li => li.dataset.id === arguments[0]);
                 return row ? row.querySelector('.status').textContent : null;",
                vec![json!(id)],
            )
            .await;
        status.as_str().map(str::to_owned)
    }

    async fn post(&self, body: &str) -> String {
        let response = reqwest::Client::new()
            .post(format!("http://{}/requests", self.api))
            .header("x-api-key", API_KEY)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let answer: Value = response.json().await.unwrap();
        answer["id"].as_str().unwrap().to_owned()
    }

    async fn until_status(&self, id: &str, status: &str) {
        eventually(WAIT, &format!("the page shows {id} {status}"), || async {
            self.status(id).await.as_deref() == Some(status)
        })
        .await;
    }
}

fn order(restaurant: &str, dish: &str) -> String {
    json!({ "restaurant": restaurant, "items": [{ "dish": dish, "quantity": 2 }] }).to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let kitchen = Kitchen::default();
    let mut config = Config::new(
        dir.path().join("console.db"),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        API_KEY.into(),
    );
    config.stream.maximum_retry_attempts = 1;
    config.retry_backoff = Duration::from_millis(50);
    let runtime = storefirst_sqlite::start(config, Arc::new(kitchen.clone()))
        .await
        .unwrap();
    let (_driver, browser) = chromium().await;
    let page = Console {
        browser: &browser,
        api: runtime.addr(),
    };
    browser
        .goto(&format!("http://{}/console", runtime.addr()))
        .await
        .unwrap();

    page.connect("not-the-key").await;
    page.until_text("connection", "a wrong key is refused", |t| {
        t.contains("refused this key")
    })
    .await;
    let stored = page.js("return sessionStorage.length", Vec::new()).await;
    assert_eq!(stored, 0, "a refused key is not kept");

    page.connect(API_KEY).await;
    page.until_text("connection", "the page connects", |t| {
        t.starts_with("Connected")
    })
    .await;
    // The page's own weight: the document, its script and its style, as transferred.
    let weight = page
        .js(
            "return performance.getEntriesByType('navigation')
                 .concat(performance.getEntriesByType('resource'))
                 .filter(e => !e.name.includes('/console/api/'))
                 .reduce((sum, e) => sum + e.transferSize, 0)",
            Vec::new(),
        )
        .await;
    let weight = weight.as_u64().unwrap();
    println!("the page's first load: {weight} bytes");
    assert!(
        (10_000..PAGE_BUDGET).contains(&weight),
        "{weight} bytes: the page stays small"
    );
    let url = browser.current_url().await.unwrap();
    assert!(
        !url.as_str().contains(API_KEY),
        "the key is never in the URL: {url}"
    );

    let posted = Instant::now();
    let ordered = page.post(&order("Roma", "margherita")).await;
    page.until_status(&ordered, "succeeded").await;
    println!("POST to succeeded in the page: {:?}", posted.elapsed());
    assert_eq!(page.text("count-succeeded").await, "1");

    // Markup and quotes everywhere a body or an error reaches the page.
    let hostile_dish =
        r#""><img src=x onerror="window.injected=1"><script>window.injected=2</script>'"#;
    let hostile = json!({
        "restaurant": "</pre><script>window.injected=3</script>",
        "items": [{ "dish": hostile_dish, "quantity": 1 }],
        "note": "'\"`${window.injected=4}`<!--",
    })
    .to_string();
    let rejected = page.post(&hostile).await;
    page.until_status(&rejected, "failed").await;
    let shown = page
        .js(
            "const row = [...document.querySelectorAll('#requests > li')]
                 .find(li => li.dataset.id === arguments[0]);
             row.querySelector('details').open = true;
             return [row.querySelector('pre.body').textContent,
                     row.querySelector('pre.error').textContent,
                     document.querySelectorAll('script').length,
                     document.querySelectorAll('img').length,
                     window.injected === undefined];",
            vec![json!(rejected)],
        )
        .await;
    assert_eq!(shown[0], json!(hostile), "the body is shown as sent");
    assert!(
        shown[1]
            .as_str()
            .unwrap()
            .contains("<script>window.injected=2</script>"),
        "the error naming the dish is text: {shown}"
    );
    assert_eq!(shown[2], 1, "only the console's own script: {shown}");
    assert_eq!(shown[3], 0, "no image was made: {shown}");
    assert_eq!(shown[4], true, "nothing ran: {shown}");

    let poison = page.post(&order("Closed", "marinara")).await;
    page.until_text(
        "dead-letters",
        "the closed kitchen's order is dead-lettered",
        |t| t.contains(&poison),
    )
    .await;
    assert_eq!(page.status(&poison).await.as_deref(), Some("pending"));
    for _ in 0..3 {
        page.post(&order("Napoli", "quattro-formaggi")).await;
    }
    if let Ok(path) = std::env::var(SCREENSHOT_VAR) {
        eventually(WAIT, "the orders succeed", || async {
            page.text("count-succeeded").await == "4"
        })
        .await;
        let png = browser.screenshot().await.unwrap();
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }

    kitchen.open.store(true, Ordering::SeqCst);
    let redrive = browser.find(Locator::Id("redrive")).await.unwrap();
    redrive.click().await.unwrap();
    let report = page
        .until_text("redrive-result", "the redrive reports", |t| {
            t.starts_with("Redrive:")
        })
        .await;
    assert_eq!(
        report,
        "Redrive: 1 stuck, 1 succeeded, 0 rejected, 0 still failing."
    );
    page.until_status(&poison, "succeeded").await;
    page.until_text("dead-empty", "the dead letters are gone", |_| true)
        .await;
    eventually(WAIT, "no dead letter is listed", || async {
        page.js(
            "return document.getElementById('dead-letters').children.length",
            Vec::new(),
        )
        .await
            == 0
    })
    .await;
    browser.close().await.unwrap();
    runtime.shutdown().await;
}
