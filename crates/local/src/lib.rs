//! What `storefirst-local`'s Lambda mode adds to the pipeline, shared with its tests: the
//! invoker that hands batches to a Lambda execution environment (the `aws` feature).

#[cfg(feature = "aws")]
pub mod lambda;
