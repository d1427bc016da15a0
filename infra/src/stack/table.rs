//! The requests table: on-demand, with its change stream, TTL, PITR and encryption.

use crate::model::{
    Expr, Logical, Resource, Template,
    dynamodb::{
        AttributeDefinition, KeySchema, PointInTimeRecoverySpecification, SseSpecification,
        StreamSpecification, Table, TimeToLiveSpecification,
    },
};

/// The TTL attribute: epoch seconds, set only on success.
pub const TTL_ATTRIBUTE: &str = "expires_at";

pub struct RequestsTable(Logical);

impl RequestsTable {
    pub fn add(template: &mut Template) -> Self {
        let table = Table {
            billing_mode: "PAY_PER_REQUEST",
            attribute_definitions: vec![AttributeDefinition {
                attribute_name: "id",
                attribute_type: "S",
            }],
            key_schema: vec![KeySchema {
                attribute_name: "id",
                key_type: "HASH",
            }],
            // The processor reads only the new image; the old one shows what an update
            // changed when debugging from the stream.
            stream_specification: StreamSpecification {
                stream_view_type: "NEW_AND_OLD_IMAGES",
            },
            time_to_live_specification: TimeToLiveSpecification {
                attribute_name: TTL_ATTRIBUTE,
                enabled: true,
            },
            point_in_time_recovery_specification: PointInTimeRecoverySpecification {
                point_in_time_recovery_enabled: true,
            },
            sse_specification: SseSpecification { sse_enabled: true },
        };
        // Accepted requests live here: deleting the stack must not delete them.
        Self(template.add("RequestsTable", Resource::new(table).retain()))
    }

    pub fn name(&self) -> Expr {
        self.0.r#ref()
    }

    pub fn arn(&self) -> Expr {
        self.0.get_att("Arn")
    }

    pub fn stream_arn(&self) -> Expr {
        self.0.get_att("StreamArn")
    }
}
