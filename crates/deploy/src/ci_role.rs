//! `deploy-ci-role`: the CI role stack (storefirst-infra's `ci_role`) deployed by the same
//! change-set flow as the app stack, with no assets; the bootstrap stack's bucket fills its
//! `AssetsBucket` parameter, which its policies name.

use std::{collections::BTreeMap, path::PathBuf};

use storefirst_infra::ci_role::{self, InvalidRepo};

use crate::{Deployment, RequireApproval};

/// What `deploy-ci-role` deploys.
#[derive(Debug, Clone)]
pub struct CiRole {
    /// The GitHub repository, `OWNER/NAME`.
    pub repo: String,
    pub stack: String,
    /// The account's existing GitHub OIDC provider; `None` creates one.
    pub oidc_provider_arn: Option<String>,
    pub bootstrap_stack: String,
    pub outputs_dir: PathBuf,
    pub yes: bool,
    pub require_approval: RequireApproval,
}

impl CiRole {
    /// The deployment of the CI role stack for `self.repo`.
    pub fn deployment(&self) -> Result<Deployment, InvalidRepo> {
        let template = ci_role::ci_role_template(&self.repo)?
            .to_json()
            .unwrap_or_else(|errors| panic!("the CI role stack does not synthesize: {errors:?}"));
        let mut parameters = BTreeMap::new();
        if let Some(arn) = &self.oidc_provider_arn {
            parameters.insert(ci_role::OIDC_PROVIDER_ARN.to_owned(), arn.clone());
        }
        Ok(Deployment {
            stack: self.stack.clone(),
            template,
            parameters,
            bucket_parameter: Some(ci_role::ASSETS_BUCKET.to_owned()),
            assets: Vec::new(),
            bootstrap_stack: self.bootstrap_stack.clone(),
            outputs_dir: self.outputs_dir.clone(),
            yes: self.yes,
            require_approval: self.require_approval,
            execution_role: None,
        })
    }
}
