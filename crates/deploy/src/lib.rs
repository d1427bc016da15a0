//! Deploys storefirst's CloudFormation stack the way `cdk deploy` does, with the AWS SDK
//! (no AWS CLI): a bootstrap stack holds an assets bucket; each function zip is uploaded
//! under its content hash only when absent; the synthesized template and parameters are
//! compared with the deployed stack's before any change set; a change set shows what
//! changes, replacing or removing stateful resources needs approval; stack events are
//! followed until the stack settles; the outputs are written to a file that the contract
//! suite (`e2e`) reads. [`logs`] follows one request through the deployed stack's logs.
//!
//! The library takes an [`Aws`] built from any `SdkConfig`, so the tests point it at moto
//! server; `storefirst-deploy` (the binary `cargo xtask deploy` runs) is a thin CLI on top.

mod assets;
mod aws;
mod body;
pub mod bootstrap;
mod change_set;
mod changes;
mod ci_role;
mod console;
mod deploy;
pub mod e2e;
mod error;
pub mod logs;
mod properties;
mod review;
mod security;
mod stack;

pub use assets::Asset;
pub use aws::{Aws, Connection};
pub use change_set::Outcome;
pub use changes::{Action, Change};
pub use ci_role::CiRole;
pub use console::{Captured, Console};
pub use deploy::{Deployed, Deployment, Diff, deploy, destroy, diff, outputs_path};
pub use error::{Error, ResourceFailure};
pub use properties::PropertyChange;
pub use review::Review;
pub use security::{
    Authorization, AuthorizationChange, Effect, RequireApproval, SecurityDiff, Sign, Statement,
};

/// Templates above this size cannot be sent inline (`TemplateBody`); they go through the
/// assets bucket (`TemplateURL`).
pub const INLINE_TEMPLATE_LIMIT: usize = 51_200;
