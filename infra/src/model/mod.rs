//! A small typed model of CloudFormation: the template, intrinsic functions, and one struct
//! per resource type the stack uses (PascalCase, as CloudFormation names the properties).

pub mod apigateway;
mod check;
pub mod cloudwatch;
pub mod dynamodb;
mod expr;
pub mod iam;
pub mod lambda;
pub mod logs;
pub mod secretsmanager;
pub mod sqs;
mod template;

pub use check::{SynthError, referenced_ids, sub_variables};
pub use expr::{Condition, Expr, PSEUDO_PARAMETERS};
pub use template::{DeletionPolicy, Logical, Output, Parameter, Resource, ResourceType, Template};
