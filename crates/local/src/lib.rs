//! What `storefirst-local`'s Lambda mode adds to the pipeline, shared with its tests: the
//! invoker that hands stream batches to a Lambda execution environment, and the SQS event
//! source mapping that hands it queue messages (the `aws` feature).

#[cfg(feature = "aws")]
pub mod lambda;
#[cfg(feature = "aws")]
pub mod sqs;
