//! The processor through the batch algorithm both runtimes run, as a user tests their own:
//! one call, no database.

use serde_json::json;
use storefirst_domain::Status;

#[tokio::test]
async fn orders_succeed_and_unknown_dishes_fail_with_their_reason() {
    let processor = storefirst_app::start()
        .await
        .expect("the sample needs no settings");
    let items = storefirst_testkit::process(
        processor,
        &[
            r#"{"restaurant":"Roma","items":[{"dish":"margherita","quantity":2}]}"#,
            r#"{"restaurant":"Roma","items":[{"dish":"sushi","quantity":1}]}"#,
        ],
    )
    .await;
    assert_eq!(items[0].status, Status::Succeeded);
    assert_eq!(
        items[0].result,
        Some(json!({"total_cents": 1700, "items": 1}))
    );
    assert_eq!(items[1].status, Status::Failed);
    assert!(
        items[1]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("sushi")),
        "{:?}",
        items[1]
    );
}
