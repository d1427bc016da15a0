//! Tests of the deploy flow, against moto server (`STOREFIRST_MOTO_URL`, set by
//! `cargo xtask test`) and against responses recorded from CloudFormation where moto cannot
//! produce them.

mod ci_role;
mod e2e;
mod iam;
mod logs;
mod moto;
mod recorded;
mod security;
mod support;
