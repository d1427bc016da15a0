//! A webhook receiver, as a client of storefirst would run one: it verifies each delivery
//! with the `standardwebhooks` crate and acts once per `webhook-id`, since deliveries are
//! at least once.
//!
//! ```sh
//! cargo run -p storefirst-webhooks --example verify -- 127.0.0.1:4000 whsec_...
//! ```
//!
//! Beside `cargo xtask dev` (which allows receivers on this machine), a request sent with
//! `x-callback-url: http://127.0.0.1:4000/hooks` is printed here when it finishes. Give
//! two secrets while the sender's is rotated: a delivery signed with either one passes.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use standardwebhooks::Webhook;

const USAGE: &str = "usage: verify ADDRESS SECRET [SECRET], e.g. 127.0.0.1:4000 whsec_... \
    (locally `storefirst-local webhook-secret --db PATH` prints the secret; on AWS the \
    stack output WebhookSecretArn names it)";

struct Receiver {
    /// The secrets a delivery may be signed with: two while the sender's is rotated.
    secrets: Vec<Webhook>,
    /// The `webhook-id`s acted on. A real receiver keeps them durably, beside the effect,
    /// for as long as a delivery can be retried or redriven.
    seen: Mutex<HashSet<String>>,
}

/// A delivery's `webhook-id` once `webhook` verified it: its signature, and its
/// `webhook-timestamp` within 5 minutes of now. These are the lines the README shows.
fn verified<'h>(
    webhook: &Webhook,
    body: &[u8],
    headers: &'h HeaderMap,
) -> Result<&'h str, Box<dyn std::error::Error>> {
    webhook.verify(body, headers)?; // the signature, and webhook-timestamp within 5 minutes
    let id = headers["webhook-id"].to_str()?; // acted on before? answer 2xx and do nothing again
    Ok(id)
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    // The raw body as it arrived, before any parsing: the signature covers these bytes.
    let Some(id) = receiver
        .secrets
        .iter()
        .find_map(|webhook| verified(webhook, &body, &headers).ok())
    else {
        // A 4xx other than 408 or 429 is permanent: the sender gives this delivery up.
        return StatusCode::UNAUTHORIZED;
    };
    let first = receiver
        .seen
        .lock()
        .expect("no handler panics holding the lock")
        .insert(id.to_owned());
    if first {
        println!("{id}: {}", String::from_utf8_lossy(&body));
    } else {
        // A retry of a delivery already acted on: acknowledge it, act on it no more.
        println!("{id}: seen before");
    }
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let address: SocketAddr = args.next().ok_or(USAGE)?.parse()?;
    // `whsec_` and base64, or the base64 alone: the crate takes either.
    let secrets = args
        .map(|secret| Webhook::new(&secret))
        .collect::<Result<Vec<_>, _>>()?;
    if secrets.is_empty() {
        return Err(USAGE.into());
    }
    let receiver = Arc::new(Receiver {
        secrets,
        seen: Mutex::default(),
    });
    let app = Router::new()
        .route("/hooks", post(receive))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind(address).await?;
    println!(
        "receiving webhooks at http://{}/hooks",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
