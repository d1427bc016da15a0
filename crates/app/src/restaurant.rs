//! The sample business logic: a restaurant order. Replace it with your own [`Processor`].

use serde::Deserialize;
use serde_json::{Value, json};
use storefirst_domain::{PendingRequest, ProcessError, Processor};

/// Prices in cents.
pub const MENU: &[(&str, u64)] = &[
    ("margherita", 850),
    ("marinara", 700),
    ("quattro-formaggi", 1000),
    ("tiramisu", 550),
    ("espresso", 200),
];

pub const QUANTITY: std::ops::RangeInclusive<i64> = 1..=20;

#[derive(Deserialize)]
struct Order {
    #[allow(
        dead_code,
        reason = "part of the order's shape, checked but not priced"
    )]
    restaurant: String,
    items: Vec<Line>,
    #[allow(
        dead_code,
        reason = "part of the order's shape, checked but not priced"
    )]
    note: Option<String>,
}

#[derive(Deserialize)]
struct Line {
    dish: String,
    quantity: i64,
}

/// Prices an order: `{"total_cents": N, "items": <number of lines>}`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RestaurantOrders;

impl RestaurantOrders {
    pub fn price(body: &str) -> Result<Value, ProcessError> {
        let reject = |reason: String| Err(ProcessError::Rejected(reason));
        let order: Order = match serde_json::from_str(body) {
            Ok(order) => order,
            Err(e) => return reject(format!("not an order: {e}")),
        };
        if order.items.is_empty() {
            return reject("the order has no items".to_owned());
        }
        let mut total_cents = 0;
        for line in &order.items {
            let Some((_, price)) = MENU.iter().find(|(dish, _)| *dish == line.dish) else {
                let menu: Vec<&str> = MENU.iter().map(|(dish, _)| *dish).collect();
                return reject(format!(
                    "unknown dish {:?}; the menu has {}",
                    line.dish,
                    menu.join(", ")
                ));
            };
            if !QUANTITY.contains(&line.quantity) {
                return reject(format!(
                    "quantity {} of {:?} is outside {}..={}",
                    line.quantity,
                    line.dish,
                    QUANTITY.start(),
                    QUANTITY.end()
                ));
            }
            total_cents += price * line.quantity.unsigned_abs();
        }
        Ok(json!({ "total_cents": total_cents, "items": order.items.len() }))
    }
}

impl Processor for RestaurantOrders {
    async fn process(&self, request: &PendingRequest) -> Result<Value, ProcessError> {
        Self::price(&request.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expected: Result<Value, &str>) {
        match (RestaurantOrders::price(body), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{body}"),
            (Err(ProcessError::Rejected(reason)), Err(fragment)) => {
                assert!(
                    reason.contains(fragment),
                    "{body}: {reason:?} should mention {fragment:?}"
                )
            }
            (got, want) => panic!("{body}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn orders() {
        let cases: &[(&str, Result<Value, &str>)] = &[
            (
                r#"{"restaurant":"Roma","items":[{"dish":"margherita","quantity":2},{"dish":"espresso","quantity":1}]}"#,
                Ok(json!({"total_cents": 1900, "items": 2})),
            ),
            (
                r#"{"restaurant":"Roma","items":[{"dish":"tiramisu","quantity":20}],"note":"it's for Ana \\ Bo"}"#,
                Ok(json!({"total_cents": 11000, "items": 1})),
            ),
            (
                r#"{"restaurant":"R","items":[{"dish":"marinara","quantity":1},{"dish":"quattro-formaggi","quantity":3}]}"#,
                Ok(json!({"total_cents": 3700, "items": 2})),
            ),
            (
                r#"{"items":[{"dish":"marinara","quantity":1}]}"#,
                Err("missing field `restaurant`"),
            ),
            (r#"{"restaurant":7,"items":[]}"#, Err("not an order")),
            (r#"{"restaurant":"R"}"#, Err("missing field `items`")),
            (r#"{"restaurant":"R","items":[]}"#, Err("no items")),
            (
                r#"{"restaurant":"R","items":[{"dish":"sushi","quantity":1}]}"#,
                Err("unknown dish \"sushi\""),
            ),
            (
                r#"{"restaurant":"R","items":[{"dish":"espresso","quantity":0}]}"#,
                Err("quantity 0 of \"espresso\" is outside 1..=20"),
            ),
            (
                r#"{"restaurant":"R","items":[{"dish":"espresso","quantity":21}]}"#,
                Err("quantity 21"),
            ),
            (
                r#"{"restaurant":"R","items":[{"dish":"espresso","quantity":-3}]}"#,
                Err("quantity -3"),
            ),
            (
                r#"{"restaurant":"R","items":[{"dish":"espresso","quantity":1.5}]}"#,
                Err("not an order"),
            ),
            (
                r#"{"restaurant":"R","items":[{"dish":"espresso"}]}"#,
                Err("missing field `quantity`"),
            ),
            (r#"{"restaurant":"R","items":"pizza"}"#, Err("not an order")),
        ];
        for (body, expected) in cases {
            check(body, expected.clone());
        }
    }
}
