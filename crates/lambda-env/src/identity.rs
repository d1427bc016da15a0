//! Who the function is (name, region, memory) and the variables Lambda sets from that.

use std::net::SocketAddr;

/// What Lambda knows of the function before it runs: it names the ARN the Runtime API
/// hands out and the variables the runtime reads.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub region: String,
    pub memory_mb: u32,
}

impl Identity {
    /// The function's ARN, in an account that stands for any.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:123456789012:function:{}",
            self.region, self.name
        )
    }

    /// The variables Lambda sets for a runtime whose Runtime API is at `runtime_api`
    /// (`LAMBDA_TASK_ROOT` aside: it depends on where the bootstrap is).
    pub fn environment(&self, runtime_api: SocketAddr) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", self.name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                self.memory_mb.to_string(),
            ),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.name),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("[$LATEST]{}", uuid::Uuid::new_v4().simple()),
            ),
            ("AWS_REGION", self.region.clone()),
            ("AWS_DEFAULT_REGION", self.region.clone()),
            ("_HANDLER", "bootstrap".to_owned()),
        ]
    }
}
