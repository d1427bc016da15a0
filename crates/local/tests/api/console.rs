//! The console's JSON API (`/console/api/v1`) over both backends, in this process with the
//! scripted processor: counts, the filtered and paged list, the backlog, the activity, the
//! dead letters, and redrive from the API; the key check, bad queries, and the page's
//! headers. The browser drives the page itself (tests/browser/console.rs).

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use storefirst_domain::Receivers;
use storefirst_pipeline::{Config, console::API_PREFIX};

use crate::{
    API_KEY, eventually,
    inprocess::{Scripted, start},
};

/// The console's API at `base` (`http://host:port`).
struct ConsoleApi {
    base: String,
    client: Client,
}

impl ConsoleApi {
    async fn send(&self, method: reqwest::Method, path: &str, key: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .request(method, format!("{}{API_PREFIX}{path}", self.base))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(
            response.headers()["cache-control"],
            "no-store",
            "{path}: never cached"
        );
        (status, response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, path, API_KEY).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn put(&self, id: &str, behaviour: &str) {
        let response = self
            .client
            .put(format!("{}/requests/{id}", self.base))
            .header("x-api-key", API_KEY)
            .json(&json!({ "behaviour": behaviour }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }

    async fn ids(&self, query: &str) -> Vec<String> {
        let page = self.get(&format!("/requests?{query}")).await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// The same questions to either backend, whose poller gives up on a record after one retry.
async fn the_console_answers(api: &ConsoleApi, processor: &Scripted) {
    let (status, refused) = api.send(reqwest::Method::GET, "/counts", "wrong").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("x-api-key"));

    api.put("con-ok-1", "ok").await;
    api.put("con-ok-2", "ok").await;
    api.put("con-rejected", "reject").await;
    api.put("con-poison", "panic").await;
    eventually(
        Duration::from_secs(30),
        "the poison is dead-lettered and the rest done",
        || async {
            let letters = api.get("/dead-letters").await;
            let counts = api.get("/counts").await;
            letters.to_string().contains("con-poison")
                && counts == json!({ "pending": 1, "succeeded": 2, "failed": 1 })
        },
    )
    .await;

    let letters = api.get("/dead-letters").await;
    let letter = &letters["dead_letters"][0];
    assert_eq!(letter["request_ids"], json!(["con-poison"]), "{letters}");
    assert!(
        letter["reason"].as_str().unwrap().contains("retr"),
        "{letter}"
    );
    assert!(letter["first"].is_string() && letter["last"].is_string());

    let failed = api.get("/requests?status=failed").await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 1, "{failed}");
    let item = &failed["items"][0];
    assert_eq!(item["id"], "con-rejected");
    assert_eq!(item["error"], "not on the menu");
    assert_eq!(item["request"], r#"{"behaviour":"reject"}"#);
    assert_eq!(item["attempts"], 1);
    assert!(item["created_at"].as_i64().unwrap() <= item["updated_at"].as_i64().unwrap());
    assert!(failed.get("next").is_none(), "one page: {failed}");

    let succeeded = api.get("/requests?status=succeeded").await;
    assert_eq!(succeeded["items"][0]["result"]["call"], 1, "{succeeded}");
    assert_eq!(api.ids("prefix=con-ok").await.len(), 2);
    assert!(api.ids("prefix=con-ok-1").await == ["con-ok-1"]);
    assert!(
        api.ids("prefix=con-o%25").await.is_empty(),
        "a prefix is literal"
    );

    // Page by page, newest first, nothing twice.
    let mut seen = Vec::new();
    let mut query = "limit=1".to_owned();
    loop {
        let page = api.get(&format!("/requests?{query}")).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 1);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(next) => query = format!("limit=1&after={next}"),
            None => break,
        }
    }
    let mut everything = api.ids("limit=100").await;
    assert_eq!(seen, everything, "pages follow the listing's order");
    everything.sort();
    assert_eq!(
        everything,
        ["con-ok-1", "con-ok-2", "con-poison", "con-rejected"]
    );

    for (query, fragment) in [
        ("limit=0", "1 to 100"),
        ("limit=101", "1 to 100"),
        ("status=stuck", "unknown status"),
        ("after=yesterday", "no cursor"),
        ("colour=red", "unknown field"),
    ] {
        let (status, body) = api
            .send(reqwest::Method::GET, &format!("/requests?{query}"), API_KEY)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(fragment),
            "{query}: {body}"
        );
    }

    let backlog = api.get("/backlog").await;
    assert_eq!(backlog["requests"], 0, "nothing waits: {backlog}");
    assert_eq!(backlog["lag_ms"], 0);

    let activity = api.get("/activity?minutes=5").await;
    let total = |field: &str| {
        activity["seconds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s[field].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(total("accepted"), 4, "{activity}");
    assert_eq!(total("processed"), 4, "{activity}");
    let (status, _) = api
        .send(reqwest::Method::GET, "/activity?minutes=61", API_KEY)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Redrive as `storefirst-local redrive` does, once the processor is fixed.
    processor.fix();
    let (status, report) = api.send(reqwest::Method::POST, "/redrive", API_KEY).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report,
        json!({ "found": 1, "succeeded": 1, "rejected": 0, "still_failing": 0 })
    );
    assert_eq!(api.get("/dead-letters").await["dead_letters"], json!([]));
    assert_eq!(
        api.ids("status=succeeded&prefix=con-poison").await,
        ["con-poison"]
    );
    let (status, _) = api.send(reqwest::Method::POST, "/redrive", "wrong").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

fn poisonable(config: &mut Config) {
    config.stream.maximum_retry_attempts = 1;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_api_over_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let processor = Scripted::default();
    let app = start(&dir.path().join("c.db"), processor.clone(), |config| {
        poisonable(config);
        config.receivers = Receivers::AlsoLoopback;
    })
    .await;
    let api = ConsoleApi {
        base: format!("http://{}", app.runtime.addr()),
        client: Client::new(),
    };
    the_console_answers(&api, &processor).await;
    let stream = api.get("/backlog").await["stream_records"].clone();
    assert!(stream.is_u64(), "SQLite counts its stream: {stream}");

    // A request's webhook and where its delivery is, as GET shows them.
    let hook = "http://127.0.0.1:9/hook";
    let response = api
        .client
        .put(format!("{}/requests/con-hook", api.base))
        .header("x-api-key", API_KEY)
        .header("x-callback-url", hook)
        .json(&json!({ "behaviour": "ok" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let listed = api.get("/requests?prefix=con-hook").await;
    let callback = &listed["items"][0]["callback"];
    assert_eq!(callback["url"], hook, "{listed}");
    assert!(callback["status"].is_string(), "{listed}");

    // The page needs no key; it runs only its own script.
    let page = api
        .client
        .get(format!("{}/console", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(page.text().await.unwrap().contains("/console/console.js"));
    app.runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_console_there_is_no_console() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(&dir.path().join("c.db"), Scripted::default(), |c| {
        c.console = false;
    })
    .await;
    for path in ["/console", "/console/api/v1/counts"] {
        let response = Client::new()
            .get(format!("http://{}{path}", app.runtime.addr()))
            .header("x-api-key", API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    app.runtime.shutdown().await;
}

/// A DynamoDB table on moto, its stream read by the poller, the processor in-process.
#[cfg(feature = "aws")]
#[tokio::test(flavor = "multi_thread")]
async fn the_console_api_over_dynamodb() {
    use std::sync::Arc;

    use storefirst_dynamodb::{DynamoReadModel, DynamoStuck};
    use storefirst_harness::requests_table;

    use crate::inprocess::config;
    use storefirst_pipeline::{Runtime, console::Console, ports::InProcess};

    let (table, dir) = (
        requests_table("console").await,
        tempfile::tempdir().unwrap(),
    );
    let db = dir.path().join("ledger.db");
    let processor = Scripted::default();
    let config = config(&db, poisonable);
    let stream = table.stream(&db).unwrap();
    let ledger = Some(stream.ledger().clone());
    let console = Console {
        read: DynamoReadModel {
            requests: table.requests(),
            ledger: ledger.clone(),
        },
        stuck: DynamoStuck {
            requests: table.requests(),
            outcomes: Arc::new(table.outcomes()),
            ledger,
            maximum_record_age: config.stream.maximum_record_age,
        },
        processor: Arc::new(processor.clone()),
        settings: config.stream.clone(),
    };
    let invoker = InProcess {
        processor: Arc::new(processor.clone()),
        store: Arc::new(table.outcomes()),
    };
    let runtime = Runtime::launch_with(&config, table.requests(), stream, invoker, |key| {
        console.routes(key)
    })
    .await
    .unwrap();
    let api = ConsoleApi {
        base: format!("http://{}", runtime.addr()),
        client: Client::new(),
    };
    the_console_answers(&api, &processor).await;
    assert_eq!(
        api.get("/backlog").await["stream_records"],
        Value::Null,
        "DynamoDB Streams are not counted"
    );
    runtime.shutdown().await;
}
