//! A DynamoDB stream record as Lambda delivers it, turned into the domain's change record.

use aws_lambda_events::event::dynamodb::EventRecord;
use storefirst_domain::{ChangeEvent, ChangeRecord, Correlation, InvalidRequestId, RequestId};

use crate::item;

/// Why a stream record cannot be processed. Permanent: every delivery of the same record
/// would fail the same way, so it is logged, never retried.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the record has no dynamodb.SequenceNumber, so it cannot be reported or retried")]
    NoSequenceNumber,
    #[error("unknown eventName {0:?}: expected INSERT, MODIFY or REMOVE")]
    UnknownEvent(String),
    #[error("the record's Keys have no string attribute `id`")]
    NoId,
    #[error(transparent)]
    InvalidId(#[from] InvalidRequestId),
    #[error(
        "the INSERT's NewImage has no `request` attribute, so it is no stored request \
         (is the stream's view type NEW_AND_OLD_IMAGES?)"
    )]
    NoRequest,
}

/// Turns a Lambda DynamoDB stream record into the domain's [`ChangeRecord`]. Only `id`
/// (from the keys), `request` and the API's ids (from the new image) are read; other
/// attributes, of whatever type, are ignored.
pub fn decode(record: EventRecord) -> Result<ChangeRecord, DecodeError> {
    let mut change = record.change;
    let sequence_number = change
        .sequence_number
        .ok_or(DecodeError::NoSequenceNumber)?;
    let Some(event) = ChangeEvent::parse(&record.event_name) else {
        return Err(DecodeError::UnknownEvent(record.event_name));
    };
    let key: String = change
        .keys
        .remove(item::ID)
        .and_then(|key| serde_dynamo::from_attribute_value(key).ok())
        .ok_or(DecodeError::NoId)?;
    let id = RequestId::parse(&key)?;
    // Absent on items stored before the API recorded its ids, or by the local runtime.
    let mut text = |attribute| {
        change
            .new_image
            .remove(attribute)
            .and_then(|value| serde_dynamo::from_attribute_value::<_, String>(value).ok())
            .filter(|text| !text.is_empty())
    };
    let correlation = Correlation {
        request_id: text(item::REQUEST_ID),
        trace_id: text(item::TRACE_ID),
    };
    let body = match change.new_image.remove(item::REQUEST) {
        // A `request` that is not a string is passed on as no body: the batch algorithm then
        // records the item as failed, instead of leaving it pending for ever.
        Some(value) => serde_dynamo::from_attribute_value::<_, String>(value)
            .inspect_err(|error| {
                tracing::warn!(
                    seq = sequence_number,
                    %id,
                    request_id = correlation.request_id.as_deref(),
                    trace_id = correlation.trace_id.as_deref(),
                    %error,
                    "the request attribute is not a string"
                )
            })
            .ok(),
        // moto emits a key-only INSERT before the full one when UpdateItem creates an item;
        // processing it would fail a request that does have a body.
        None if event == ChangeEvent::Insert => return Err(DecodeError::NoRequest),
        None => None,
    };
    Ok(ChangeRecord {
        sequence_number,
        event,
        id,
        body,
        correlation,
    })
}
