//! The test kit of storefirst's own suites and bench (never of a user's processor: that is
//! `storefirst-testkit`): moto server and a requests table on it (`moto`), a server started
//! as a child process that announces its URL (`process`), and waiting for a condition
//! (`wait`).

pub mod moto;
pub mod process;
pub mod wait;

pub use moto::{
    LAMBDA_ZIP_VAR, MOTO_URL_VAR, REGION, get_item, lambda_mode, moto_url, requests_table,
    sdk_config, stream_records, unique,
};
pub use process::{Listening, SpawnError};
pub use wait::{eventually, until_some};
