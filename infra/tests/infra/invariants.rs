//! What must stay true of the stack (design section 6), checked on the synthesized JSON.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use storefirst_domain::StreamSettings;
use storefirst_infra::model::{
    Condition, Expr, Output, Parameter, Resource, SynthError, Template, sqs,
};

use crate::support::{VTL_PYTHON_VAR, required_var, resource, resources_of, template};

fn queue() -> sqs::Queue {
    sqs::Queue::encrypted(60)
}

/// A template with a queue `Q`, a parameter `P` and a condition `C`, plus `extra`.
fn check(extra: impl FnOnce(&mut Template), expected: &[&str]) {
    let mut template = Template::new("test");
    template.parameter("P", Parameter::string("p"));
    template.condition("C", Condition::Equals(Expr::Ref("P".into()), "x".into()));
    template.add("Q", Resource::new(queue()));
    extra(&mut template);
    let errors: Vec<String> = match template.to_json() {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(SynthError::to_string).collect(),
    };
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, fragment) in errors.iter().zip(expected) {
        assert!(error.contains(fragment), "{error} should say {fragment}");
    }
}

fn output(value: Expr) -> Output {
    Output {
        description: "o",
        value,
        condition: None,
    }
}

/// The stack's own references are checked wherever it is synthesized: every test here
/// reads it through `support::template()`, which fails naming any that does not resolve.
#[test]
fn synthesis_refuses_references_that_do_not_resolve() {
    check(|t| t.output("O", output(Expr::Ref("Q".into()))), &[]);
    check(
        |t| {
            t.output(
                "O",
                output(Expr::sub("${Q}-${P}-${AWS::Region}-${!Literal}-${Q.Arn}")),
            )
        },
        &[],
    );
    check(
        |t| t.output("O", output(Expr::Ref("Missing".into()))),
        &["O refers to Missing, which is not a resource"],
    );
    check(
        |t| t.output("O", output(Expr::GetAtt("Q".into(), "Url".into()))),
        &["attribute Url of Q (AWS::SQS::Queue), which has only Arn, QueueName, QueueUrl"],
    );
    check(
        |t| t.output("O", output(Expr::sub("${Nothing}"))),
        &["${Nothing} resolves to nothing"],
    );
    check(
        |t| t.output("O", output(Expr::sub("${Q.Nope}"))),
        &["attribute Nope of Q"],
    );
    check(
        |t| {
            t.output(
                "O",
                output(Expr::sub_with("${X}", [("X", Expr::Ref("Gone".into()))])),
            )
        },
        &["O refers to Gone"],
    );
    check(
        |t| {
            t.add("R", Resource::new(queue()).condition("Undefined"));
        },
        &["R uses condition Undefined, which is not defined"],
    );
    check(
        |t| {
            let only_sometimes = t.add("S", Resource::new(queue()).condition("C"));
            t.add("R", Resource::new(queue()).depends_on(&only_sometimes));
            t.output(
                "O",
                output(Expr::if_("C", only_sometimes.r#ref(), "".into())),
            );
        },
        &["R refers to S, which exists only when condition C holds"],
    );
    check(
        |t| {
            t.add("Q", Resource::new(queue()));
            t.add("P", Resource::new(queue()));
        },
        &[
            "logical id Q is defined twice",
            "logical id P is defined twice",
        ],
    );
}

/// Every IAM statement of the template, with the resource that holds it.
fn statements() -> Vec<(&'static str, &'static Value)> {
    let mut found = Vec::new();
    for (id, role) in resources_of("AWS::IAM::Role") {
        for policy in role["Properties"]["Policies"]
            .as_array()
            .into_iter()
            .flatten()
        {
            found.extend(
                policy["PolicyDocument"]["Statement"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| (id, s)),
            );
        }
    }
    for (id, policy) in resources_of("AWS::IAM::Policy") {
        found.extend(
            policy["Properties"]["PolicyDocument"]["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (id, s)),
        );
    }
    found
}

#[test]
fn iam_is_least_privilege() {
    let all = statements();
    assert!(!all.is_empty());
    for (id, statement) in &all {
        assert_eq!(statement["Effect"], "Allow", "{id}");
        for action in statement["Action"].as_array().unwrap() {
            let action = action.as_str().unwrap();
            assert!(!action.contains('*'), "{id}: wildcard action {action}");
        }
        // ListStreams has no resource-level permissions: the one place "*" is required.
        if statement["Resource"]
            .as_array()
            .unwrap()
            .contains(&json!("*"))
        {
            assert_eq!(statement["Action"], json!(["dynamodb:ListStreams"]), "{id}");
        }
    }
    let table_arn = json!([{"Fn::GetAtt": ["RequestsTable", "Arn"]}]);
    let stream_arn = json!([{"Fn::GetAtt": ["RequestsTable", "StreamArn"]}]);
    let stream_reads = json!([
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator"
    ]);
    let grants = |holder: &str| -> Vec<(Value, Value)> {
        all.iter()
            .filter(|(id, _)| *id == holder)
            .map(|(_, s)| (s["Action"].clone(), s["Resource"].clone()))
            .collect()
    };
    assert_eq!(
        grants("ApiRole"),
        vec![(
            json!([
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:GetItem"
            ]),
            table_arn.clone()
        )]
    );
    assert_eq!(
        grants("StreamProcessorPolicy"),
        vec![
            (json!(["dynamodb:UpdateItem"]), table_arn.clone()),
            (stream_reads.clone(), stream_arn.clone()),
            (json!(["dynamodb:ListStreams"]), json!(["*"])),
            (
                json!(["sqs:SendMessage"]),
                json!([{"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}])
            ),
            (
                json!(["logs:CreateLogStream", "logs:PutLogEvents"]),
                json!([{"Fn::GetAtt": ["StreamProcessorLogs", "Arn"]}])
            ),
        ]
    );
    let queue = json!({"Fn::GetAtt": ["WebhookQueue", "Arn"]});
    assert_eq!(
        grants("NotifierPolicy"),
        vec![
            (json!(["dynamodb:UpdateItem"]), table_arn),
            (stream_reads, stream_arn),
            (json!(["dynamodb:ListStreams"]), json!(["*"])),
            (
                json!(["sqs:SendMessage"]),
                json!([queue, {"Fn::GetAtt": ["WebhookDeadLetters", "Arn"]}])
            ),
            (
                json!([
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes"
                ]),
                json!([queue])
            ),
            (
                json!(["secretsmanager:GetSecretValue"]),
                json!([{"Ref": "WebhookSecret"}])
            ),
            (
                json!(["logs:CreateLogStream", "logs:PutLogEvents"]),
                json!([{"Fn::GetAtt": ["NotifierLogs", "Arn"]}])
            ),
        ]
    );
    assert_eq!(
        resource("NotifierPolicy")["Properties"]["Roles"],
        json!([{"Ref": "NotifierRole"}])
    );
}

#[test]
fn the_mapping_follows_the_stream_settings() {
    let settings = StreamSettings::DEFAULT;
    let mapping = resource("StreamMapping");
    let p = &mapping["Properties"];
    assert_eq!(mapping["Type"], "AWS::Lambda::EventSourceMapping");
    assert_eq!(
        p["EventSourceArn"],
        json!({"Fn::GetAtt": ["RequestsTable", "StreamArn"]})
    );
    assert_eq!(p["StartingPosition"], "TRIM_HORIZON");
    assert_eq!(p["BatchSize"], settings.batch_size);
    assert_eq!(
        p["MaximumBatchingWindowInSeconds"],
        settings.batching_window.as_secs()
    );
    assert_eq!(p["BisectBatchOnFunctionError"], true);
    assert_eq!(p["MaximumRetryAttempts"], settings.maximum_retry_attempts);
    assert!(settings.maximum_retry_attempts > 0 && settings.maximum_retry_attempts < 10_000);
    assert_eq!(
        p["MaximumRecordAgeInSeconds"],
        settings.maximum_record_age.as_secs()
    );
    assert_eq!(
        p["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    let pattern: Value = serde_json::from_str(
        p["FilterCriteria"]["Filters"][0]["Pattern"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(pattern, json!({"eventName": ["INSERT"]}));
    // The queue's ARN: its Ref would be the URL, which the mapping refuses.
    assert_eq!(
        p["DestinationConfig"]["OnFailure"]["Destination"],
        json!({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})
    );
    assert_eq!(mapping["DependsOn"], json!(["StreamProcessorPolicy"]));
    assert_eq!(
        resource("StreamProcessorPolicy")["Properties"]["Roles"],
        json!([{"Ref": "StreamProcessorRole"}])
    );
    // Switched off by a parameter, for emulators.
    assert_eq!(mapping["Condition"], "StreamProcessingEnabled");
    assert_eq!(
        template()["Conditions"]["StreamProcessingEnabled"],
        json!({"Fn::Equals": [{"Ref": "StreamProcessing"}, "enabled"]})
    );
    assert_eq!(
        template()["Parameters"]["StreamProcessing"]["AllowedValues"],
        json!(["enabled", "disabled"])
    );
}

#[test]
fn the_function_is_arm64_al2023_and_configured_as_the_lambda_reads_it() {
    let function = &resource("StreamProcessor")["Properties"];
    assert_eq!(function["Runtime"], "provided.al2023");
    assert_eq!(function["Architectures"], json!(["arm64"]));
    assert_eq!(function["Handler"], "bootstrap");
    assert_eq!(
        function["Role"],
        json!({"Fn::GetAtt": ["StreamProcessorRole", "Arn"]})
    );
    assert_eq!(function["LoggingConfig"]["LogFormat"], "JSON");
    let retention = resource("StreamProcessorLogs")["Properties"]["RetentionInDays"].as_u64();
    assert!(retention.is_some_and(|days| days > 0));
    let variables = function["Environment"]["Variables"].as_object().unwrap();
    assert_eq!(
        variables[storefirst_lambda::TABLE_VAR],
        json!({"Ref": "RequestsTable"})
    );
    // What the function reads from this environment is the one stream configuration.
    let config = storefirst_lambda::Config::from_lookup(|name| {
        variables.get(name).map(|value| match value {
            Value::String(text) => text.clone(),
            _ => "requests-table".to_owned(),
        })
    })
    .expect("the function accepts its environment");
    assert_eq!(config.settings, StreamSettings::DEFAULT);
    assert_eq!(config.table_name, "requests-table");
    assert!(variables.contains_key(storefirst_lambda::RETENTION_VAR));
}

#[test]
fn stateful_resources_are_retained_and_the_table_streams_and_expires() {
    let table = resource("RequestsTable");
    let p = &table["Properties"];
    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        p["StreamSpecification"]["StreamViewType"],
        "NEW_AND_OLD_IMAGES"
    );
    assert_eq!(
        p["TimeToLiveSpecification"],
        json!({"AttributeName": "expires_at", "Enabled": true})
    );
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(p["SSESpecification"]["SSEEnabled"], true);
    // A failed first create holds no data: it leaves nothing behind to orphan.
    for id in ["RequestsTable", "DeadLetterQueue", "WebhookDeadLetters"] {
        assert_eq!(
            resource(id)["DeletionPolicy"],
            "RetainExceptOnCreate",
            "{id}"
        );
        assert_eq!(resource(id)["UpdateReplacePolicy"], "Retain", "{id}");
    }
    for id in ["DeadLetterQueue", "WebhookDeadLetters"] {
        let queue = &resource(id)["Properties"];
        assert_eq!(queue["MessageRetentionPeriod"], 14 * 24 * 3600, "{id}");
        assert_eq!(queue["SqsManagedSseEnabled"], true, "{id}");
    }
}

#[test]
fn the_notifier_runs_as_the_processor_does_with_the_environment_it_reads() {
    let processor = &resource("StreamProcessor")["Properties"];
    let function = &resource("NotifierFunction")["Properties"];
    for property in [
        "Runtime",
        "Architectures",
        "Handler",
        "MemorySize",
        "Code",
        "LoggingConfig",
    ] {
        let (ours, theirs) = (&function[property], &processor[property]);
        match property {
            "Code" => {
                assert_eq!(ours["S3Bucket"], theirs["S3Bucket"]);
                assert_eq!(ours["S3Key"], json!({"Ref": "NotifierKey"}));
            }
            "LoggingConfig" => {
                assert_eq!(ours["LogFormat"], theirs["LogFormat"]);
                assert_eq!(ours["LogGroup"], json!({"Ref": "NotifierLogs"}));
            }
            _ => assert_eq!(ours, theirs, "{property}"),
        }
    }
    assert_eq!(
        function["Role"],
        json!({"Fn::GetAtt": ["NotifierRole", "Arn"]})
    );
    assert_eq!(
        function["Timeout"],
        storefirst_infra::stack::notifier::TIMEOUT.as_secs()
    );
    assert_eq!(
        function["Environment"]["Variables"],
        json!({
            "TABLE_NAME": {"Ref": "RequestsTable"},
            "DELIVERY_QUEUE_URL": {"Ref": "WebhookQueue"},
            "DEAD_LETTER_QUEUE_URL": {"Ref": "WebhookDeadLetters"},
            "WEBHOOK_SECRET_ARN": {"Ref": "WebhookSecret"},
        })
    );
    assert_eq!(
        resource("NotifierLogs")["Properties"]["RetentionInDays"],
        resource("StreamProcessorLogs")["Properties"]["RetentionInDays"]
    );
    // What the function reads from this environment: the stack's queues and secret, and
    // public receivers only.
    let variables = function["Environment"]["Variables"].as_object().unwrap();
    let config = storefirst_notifier::Config::from_lookup(|name| {
        variables
            .get(name)
            .map(|value| value["Ref"].as_str().unwrap().to_owned())
    })
    .expect("the notifier accepts its environment");
    assert_eq!(
        (
            config.table_name.as_str(),
            config.delivery_queue_url.as_str(),
            config.dead_letter_queue_url.as_str(),
            config.secret_id.as_str(),
        ),
        (
            "RequestsTable",
            "WebhookQueue",
            "WebhookDeadLetters",
            "WebhookSecret"
        )
    );
    assert_eq!(config.receivers, storefirst_domain::Receivers::Public);
    // Loopback receivers are for storefirst-local's Lambda mode only.
    assert!(
        !template()
            .to_string()
            .contains(storefirst_notifier::LOOPBACK_VAR),
        "the stack must never let the notifier deliver to loopback addresses"
    );
}

#[test]
fn the_notifier_is_fed_by_the_stream_filter_and_by_its_queue() {
    let stream = resource("NotifierStreamMapping");
    let p = &stream["Properties"];
    assert_eq!(
        p["EventSourceArn"],
        json!({"Fn::GetAtt": ["RequestsTable", "StreamArn"]})
    );
    assert_eq!(p["FunctionName"], json!({"Ref": "NotifierFunction"}));
    assert_eq!(
        p["FilterCriteria"],
        json!({"Filters": [{"Pattern": storefirst_lambda::item::notifier_filter_pattern()}]})
    );
    assert_eq!(
        p["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(p["BatchSize"], 100);
    // As the processor's: a mapping created after the table's first writes still sees them.
    assert_eq!(
        p["StartingPosition"],
        resource("StreamMapping")["Properties"]["StartingPosition"]
    );
    // An enqueue that fails is retried while the record is in the stream.
    assert_eq!(p["MaximumRetryAttempts"], -1);
    assert_eq!(p["MaximumRecordAgeInSeconds"], -1);

    let queue = resource("NotifierQueueMapping");
    let q = &queue["Properties"];
    assert_eq!(
        q["EventSourceArn"],
        json!({"Fn::GetAtt": ["WebhookQueue", "Arn"]})
    );
    assert_eq!(q["FunctionName"], json!({"Ref": "NotifierFunction"}));
    assert_eq!(q["BatchSize"], 10);
    assert_eq!(
        q["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert!(q["ScalingConfig"]["MaximumConcurrency"].as_u64().is_some());
    for key in ["StartingPosition", "FilterCriteria", "DestinationConfig"] {
        assert!(q.get(key).is_none(), "a queue mapping takes no {key}");
    }
    for mapping in [stream, queue] {
        assert_eq!(mapping["Condition"], "StreamProcessingEnabled");
        assert_eq!(mapping["DependsOn"], json!(["NotifierPolicy"]));
    }
}

#[test]
fn the_delivery_queue_hides_a_message_while_it_is_tried_and_dead_letters_after_five() {
    let queue = &resource("WebhookQueue")["Properties"];
    let timeout = resource("NotifierFunction")["Properties"]["Timeout"]
        .as_u64()
        .unwrap();
    // AWS's advice for a queue that feeds a function.
    assert!(queue["VisibilityTimeout"].as_u64().unwrap() >= 6 * timeout);
    assert_eq!(queue["SqsManagedSseEnabled"], true);
    assert_eq!(
        queue["RedrivePolicy"],
        json!({
            "deadLetterTargetArn": {"Fn::GetAtt": ["WebhookDeadLetters", "Arn"]},
            "maxReceiveCount": 5,
        })
    );
    // A delivery is delayed at most 15 minutes at a time: it never outlives the queue.
    assert!(
        queue["MessageRetentionPeriod"].as_u64().unwrap()
            > storefirst_notifier::MAX_DELAY.as_secs()
    );
}

#[test]
fn the_webhook_secret_is_generated_never_written_in_the_template() {
    let secret = resource("WebhookSecret");
    assert_eq!(secret["Type"], "AWS::SecretsManager::Secret");
    let p = &secret["Properties"];
    assert!(p.get("SecretString").is_none(), "a value in the template");
    // 64 letters and digits: base64 of 48 bytes, without padding.
    assert_eq!(
        p["GenerateSecretString"],
        json!({"PasswordLength": 64, "ExcludePunctuation": true, "IncludeSpace": false})
    );
    let outputs = &template()["Outputs"];
    for (output, value) in [
        ("WebhookSecretArn", json!({"Ref": "WebhookSecret"})),
        ("WebhookQueueUrl", json!({"Ref": "WebhookQueue"})),
        (
            "WebhookDeadLettersUrl",
            json!({"Ref": "WebhookDeadLetters"}),
        ),
    ] {
        assert_eq!(outputs[output]["Value"], value, "{output}");
    }
}

#[test]
fn every_method_needs_the_api_key_and_the_deployment_waits_for_them() {
    let methods = resources_of("AWS::ApiGateway::Method");
    let verbs: BTreeSet<&str> = methods
        .iter()
        .map(|(_, m)| m["Properties"]["HttpMethod"].as_str().unwrap())
        .collect();
    assert_eq!(verbs, BTreeSet::from(["GET", "OPTIONS", "POST", "PUT"]));
    for (id, method) in &methods {
        let p = &method["Properties"];
        if p["HttpMethod"] == "OPTIONS" {
            // A browser's preflight carries no key; it never reaches the table; there is
            // none while no origin is allowed.
            assert_eq!(method["Condition"], "CorsConfigured", "{id}");
            assert_eq!(p["ApiKeyRequired"], false, "{id}");
            assert_eq!(p["Integration"]["Type"], "MOCK", "{id}");
            assert!(p["Integration"].get("Credentials").is_none(), "{id}");
            continue;
        }
        assert_eq!(p["ApiKeyRequired"], true, "{id}");
        assert_eq!(
            p["Integration"]["Type"], "AWS",
            "{id}: no function on the request path"
        );
        assert_eq!(p["Integration"]["PassthroughBehavior"], "NEVER", "{id}");
        assert_eq!(
            p["Integration"]["Credentials"],
            json!({"Fn::GetAtt": ["ApiRole", "Arn"]}),
            "{id}"
        );
    }
    // One deployment per CORS state, both of everything; the stage serves the one of the
    // state the stack is in.
    let deployments = resources_of("AWS::ApiGateway::Deployment");
    let conditions: BTreeSet<&str> = deployments
        .iter()
        .map(|(_, d)| d["Condition"].as_str().expect("a condition"))
        .collect();
    assert_eq!(
        conditions,
        BTreeSet::from(["CorsConfigured", "CorsNotConfigured"])
    );
    for (deployment, definition) in &deployments {
        let depends: BTreeSet<&str> = definition["DependsOn"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        for (id, resource) in methods
            .iter()
            .chain(&resources_of("AWS::ApiGateway::GatewayResponse"))
        {
            // Each on what exists in its state.
            let exists =
                resource["Condition"].is_null() || resource["Condition"] == definition["Condition"];
            assert_eq!(
                depends.contains(id),
                exists,
                "{deployment} must depend on {id} exactly when it exists"
            );
        }
    }
    let by_condition = |condition: &str| {
        deployments
            .iter()
            .find(|(_, d)| d["Condition"] == condition)
            .map(|(id, _)| *id)
            .expect("a deployment")
    };
    assert_eq!(
        resource("ApiStage")["Properties"]["DeploymentId"],
        json!({"Fn::If": [
            "CorsConfigured",
            {"Ref": by_condition("CorsConfigured")},
            {"Ref": by_condition("CorsNotConfigured")}
        ]})
    );
    let stage = &resource("ApiStage")["Properties"];
    assert!(stage["AccessLogSetting"]["DestinationArn"].is_object());
    let plan = &resource("ApiUsagePlan")["Properties"];
    assert!(
        plan["Throttle"]["RateLimit"]
            .as_f64()
            .is_some_and(|r| r > 0.0)
    );
    assert_eq!(
        resource("ApiUsagePlanKey")["Properties"]["KeyId"],
        json!({"Ref": "ApiKey"})
    );
}

#[test]
fn the_api_leaves_account_settings_alone_and_keeps_its_logs_bounded() {
    // API Gateway's CloudWatch role is one per account and region: the bootstrap step
    // sets it only where none is set, never the app stack for every API of the region.
    assert!(resources_of("AWS::ApiGateway::Account").is_empty());
    let (id, logs) = resources_of("AWS::Logs::LogGroup")
        .into_iter()
        .find(|(_, group)| group["Properties"].get("LogGroupName").is_some())
        .expect("the execution log group");
    assert_eq!(
        logs["Properties"]["LogGroupName"],
        json!({"Fn::Sub": "API-Gateway-Execution-Logs_${Api}/prod"}),
        "the name API Gateway writes execution logs to"
    );
    assert_eq!(logs["Properties"]["RetentionInDays"], 30);
    let stage = resource("ApiStage");
    assert!(
        stage["DependsOn"]
            .as_array()
            .is_some_and(|d| d.contains(&json!(id))),
        "the stage must wait for {id}, or API Gateway creates the group first: {stage}"
    );
    assert_eq!(
        stage["Properties"]["StageName"], "prod",
        "the execution log group's name has the stage's"
    );
    // `{}` is no request: an empty body may reach the templates as `{}`.
    assert_eq!(
        resource("ApiRequestModel")["Properties"]["Schema"]["minProperties"],
        1
    );
}

#[test]
fn partitions_and_url_suffixes_come_from_pseudo_parameters() {
    let text = template().to_string();
    assert!(!text.contains("arn:aws:"), "a hard-coded partition");
    // Service principals are names, not URLs: the only place amazonaws.com may appear.
    let principals = text.matches("\"Service\":\"lambda.amazonaws.com\"").count()
        + text
            .matches("\"Service\":\"apigateway.amazonaws.com\"")
            .count();
    assert_eq!(text.matches("amazonaws.com").count(), principals);
    assert!(text.contains("${AWS::Partition}") && text.contains("${AWS::URLSuffix}"));
}

#[test]
fn alarms_watch_dead_letters_give_ups_iterator_age_and_errors() {
    let watched: BTreeSet<&str> = resources_of("AWS::CloudWatch::Alarm")
        .iter()
        .map(|(_, a)| a["Properties"]["MetricName"].as_str().unwrap())
        .collect();
    assert_eq!(
        watched,
        BTreeSet::from([
            "ApproximateNumberOfMessagesVisible",
            "Errors",
            "IteratorAge"
        ])
    );
    let give_ups = &resource("WebhookGiveUpsAlarm")["Properties"];
    assert_eq!(
        give_ups["Dimensions"],
        json!([{"Name": "QueueName", "Value": {"Fn::GetAtt": ["WebhookDeadLetters", "QueueName"]}}])
    );
    assert_eq!(give_ups["MetricName"], "ApproximateNumberOfMessagesVisible");
    assert_eq!(give_ups["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(give_ups["Threshold"], 0.0);
    // Each function's iterator age and errors.
    for function in ["StreamProcessor", "NotifierFunction"] {
        let watching: BTreeSet<&str> = resources_of("AWS::CloudWatch::Alarm")
            .iter()
            .filter(|(_, a)| a["Properties"]["Dimensions"][0]["Value"] == json!({"Ref": function}))
            .map(|(_, a)| a["Properties"]["MetricName"].as_str().unwrap())
            .collect();
        assert_eq!(
            watching,
            BTreeSet::from(["Errors", "IteratorAge"]),
            "{function}"
        );
    }
    let outputs: BTreeSet<&String> = template()["Outputs"].as_object().unwrap().keys().collect();
    for output in ["ApiUrl", "TableName", "DeadLetterQueueUrl", "ApiKeyId"] {
        assert!(outputs.contains(&output.to_owned()), "output {output}");
    }
}

#[test]
fn the_template_fits_in_a_template_url() {
    // Over 51,200 bytes of TemplateBody `cargo xtask deploy` uploads the template to the
    // assets bucket (tested in the deploy crate); a TemplateURL takes at most 1 MB.
    let size = template().to_string().len();
    assert!(
        size < 1024 * 1024,
        "{size} bytes: CloudFormation takes at most 1 MB; split the stack"
    );
}

#[test]
fn cors_origins_takes_only_what_a_browser_sends_and_star_alone() {
    let parameter = &template()["Parameters"]["CorsOrigins"];
    assert_eq!(parameter["Default"], "", "none by default");
    let pattern = parameter["AllowedPattern"].as_str().expect("a pattern");
    let accepted = [
        "",
        "*",
        "https://app.example.com",
        "http://127.0.0.1:8081",
        "https://app.example.com,http://localhost:3001",
    ];
    let refused = [
        "*,https://app.example.com",
        "https://app.example.com,*",
        "https://App.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "app.example.com",
        "ftp://app.example.com",
        "https://app.example.com, http://localhost:3001",
        "https://[::1]:8443",
        "https://app.example.com,",
    ];
    // The pattern as CloudFormation applies it to the whole value (Python's re and Java's
    // regex agree on this syntax); every accepted value is a valid stage variable too.
    let python = required_var(VTL_PYTHON_VAR, "a Python (the VTL engine's)");
    let script = "import json, re, sys\n\
        p, values = json.load(sys.stdin)\n\
        print(json.dumps([re.fullmatch(p, v) is not None for v in values]))";
    let values: Vec<&str> = accepted.iter().chain(&refused).copied().collect();
    let mut child = std::process::Command::new(&python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run {python}: {e}"));
    std::io::Write::write_all(
        &mut child.stdin.take().expect("piped"),
        json!([pattern, values]).to_string().as_bytes(),
    )
    .expect("written");
    let output = child.wait_with_output().expect("python runs");
    let matched: Vec<bool> = serde_json::from_slice(&output.stdout).expect("a JSON list");
    for (value, matched) in values.iter().zip(matched) {
        assert_eq!(
            matched,
            accepted.contains(value),
            "{value:?} against {pattern}"
        );
        if matched && !value.is_empty() && *value != "*" {
            assert!(
                value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#&=,".contains(&b)),
                "{value:?} cannot be a stage variable"
            );
        }
    }
}
