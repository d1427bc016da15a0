#!/usr/bin/env python3
"""What a million storefirst requests cost on AWS (us-east-1): polling against webhooks.

Prints the Markdown tables of the README section "What a million requests cost: polling
against webhooks". The function's memory and the batch sizes are read from the code that
defines the stack; the prices and the assumptions are below, each price with its source
and the date it was read. When a price changes, edit it here and paste the new output:

    python3 docs/webhook-cost.py                  # prints the tables
    python3 docs/webhook-cost.py --check README.md   # exit 1 unless README.md has them verbatim

List prices, us-east-1, first pricing tier, free tiers left out.
"""

import math
from decimal import ROUND_HALF_UP, Decimal
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MILLION = 1_000_000
KIB = 1024
GB = 1024**3  # AWS bills data and log volume in binary gigabytes

# Prices in USD, read 2026-12-01. The stored copies of the AWS pricing pages do not hold
# their tables (the browser renders them): "confirmed" names another AWS page that states
# the figure; "price list" names the AWS Price List API offer (version, SKU) as quoted by
# public cost notes that read it on 2026-10-03 (not read here), beside third-party pages.
# An offer <offer>/<version> is https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/<offer>/<version>/us-east-1/index.json
PRICES = {
    # https://aws.amazon.com/api-gateway/pricing/ ; REST API, first 333 million requests a
    # month; confirmed: AWS whitepaper, best practices for private APIs, cost optimization,
    # table 4 (https://docs.aws.amazon.com/whitepapers/latest/best-practices-api-gateway-private-apis-integration/cost-optimization.html).
    "apigw_rest_per_million": 3.50,
    # https://aws.amazon.com/dynamodb/pricing/on-demand/ ; Standard table class, halved from
    # 1 November 2024 ($1.25 and $0.25 before). Price list AmazonDynamoDB/20260911124422,
    # SKUs FGXVD96DKJMUASY3 (write) and 4W4ZMC46EHE8XTTZ (read); also
    # https://airbyte.com/data-engineering-resources/dynamodb-pricing (2025-07-21).
    "ddb_wru_per_million": 0.625,
    "ddb_rru_per_million": 0.125,
    # https://aws.amazon.com/lambda/pricing/ ; requests confirmed: AWS whitepaper "How AWS
    # Pricing Works", Lambda (https://docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/lambda.html).
    # Arm duration: 20% below x86's $0.0000166667 (AWS News Blog, 2021-09-29,
    # https://aws.amazon.com/blogs/aws/aws-lambda-functions-powered-by-aws-graviton2-processor-run-your-functions-on-arm-and-get-up-to-34-better-price-performance/),
    # first 7.5 billion GB-seconds a month (https://aws.amazon.com/blogs/compute/introducing-tiered-pricing-for-aws-lambda/).
    "lambda_per_million_requests": 0.20,
    "lambda_arm_per_gb_second": 0.0000133334,
    # https://aws.amazon.com/sqs/pricing/ ; standard queue, 1 million to 100 billion requests
    # a month, each 64 KiB chunk of a payload one request. Price list
    # AWSQueueService/20260911124607, SKU 8RN6B8U4MERHRXP3; also
    # https://cloudburn.io/blog/amazon-sqs-pricing (2026-03-14).
    "sqs_standard_per_million": 0.40,
    # https://aws.amazon.com/secrets-manager/pricing/ . Price list
    # AWSSecretsManager/20260911124610, SKUs BJ3PQ9BYGU6P632F and 4MDZ5VNEJPMUTG9B.
    "secret_per_month": 0.40,
    "secrets_api_per_10k": 0.05,
    # https://aws.amazon.com/cloudwatch/pricing/ ; Logs ingestion, Standard class (Lambda's
    # logs: the first 10 TB of the tiers of 1 May 2025). Price list
    # AmazonCloudWatch/20260922021715, SKU 96K55R2PV3ZZZ3AM; also https://www.duckbillgroup.com/?p=9080 .
    "logs_per_gb": 0.50,
    # https://aws.amazon.com/ec2/pricing/on-demand/ ; out to the internet, first 10 TB a
    # month (API Gateway's answers and Lambda's POSTs alike). Price list
    # AWSDataTransfer/20260916132208, DataTransfer-Out-Bytes; also https://wring.co/blog/aws-data-transfer-pricing-guide .
    "transfer_out_per_gb": 0.09,
    # https://aws.amazon.com/cloudwatch/pricing/ ; a standard-resolution alarm a month.
    # Price list AmazonCloudWatch/20260922021715, SKU EVETVUGEN3MUTMXM.
    "alarm_per_month": 0.10,
}

# What only measuring on AWS can tell; each is said in the README beside the table.
ASSUMED = {
    # The item (request, result, ids, times, callback) and the GET document: at most 1 KiB
    # each, so one write request unit per write and one read request unit per strongly
    # consistent read (4 KiB). The sample restaurant order's item is about half that.
    "item_bytes": 1 * KIB,
    "document_bytes": 1 * KIB,
    # The delivery message: the document plus id, url, webhook_id, attempts, first_due_at.
    "delivery_message_bytes": 1 * KIB + 300,
    # A 202 answer's body and headers.
    "accepted_answer_bytes": 300,
    # Billed time of one invocation: the processor on one record (one UpdateItem), the
    # notifier enqueueing (one SendMessageBatch), the notifier delivering (one HTTPS POST
    # to a receiver elsewhere on the internet, TLS handshake included, then one
    # UpdateItem). A receiver that takes the whole 5 s timeout costs 20 times the last.
    "processor_seconds": 0.030,
    "enqueue_seconds": 0.030,
    "deliver_seconds": 0.250,
    # Execution environments started per function per million requests, each billed for
    # its init (Lambda bills the init of a custom runtime) and, for the notifier, one
    # GetSecretValue.
    "inits_per_million": 1_000,
    "init_seconds": 0.150,
    # CloudWatch Logs lines, JSON, with their span lists: the processor's "batch
    # processed" and its EMF metrics line per invocation; the notifier's "webhook
    # deliveries enqueued" per stream invocation and "webhook delivered" per delivery.
    "processor_log_bytes_per_invocation": 950,
    "notifier_log_line_bytes": 400,
    # The idle delivery queue: Lambda long-polls it (AWS documents that, not how many
    # pollers do); five pollers each holding 20-second polls all month.
    "idle_pollers": 5,
    "idle_poll_seconds": 20,
}

# One line of the API stage's access log (infra/src/stack/api.rs), representative values.
ACCESS_LOG_LINE = (
    '{"requestId":"c6af9ac6-7b61-11e6-9a41-93e8deadbeef","ip":"203.0.113.7",'
    '"requestTime":"1764620000000","method":"GET",'
    '"path":"/requests/01JEXAMPLE0000000000000000","status":"200",'
    '"responseLength":"412","latency":"18","integrationStatus":"200",'
    '"integrationLatency":"12","error":"-","apiKeyId":"a1b2c3d4e5",'
    '"extendedRequestId":"Xyz12AbCdEFg3Hi=","xrayTraceId":"-"}'
)


def constant(path, pattern, what):
    """An integer the stack's code defines: `pattern`'s first group in `path`."""
    text = (ROOT / path).read_text()
    found = re.search(pattern, text)
    if not found:
        sys.exit(f"webhook-cost.py: {what} not found in {path} (pattern {pattern!r}); update the pattern")
    return int(found.group(1))


STACK = {
    "memory_mb": constant("crates/app/src/function.rs", r"MEMORY_MB: u32 = (\d+);", "the functions' memory"),
    "processor_batch": constant("crates/domain/src/settings.rs", r"batch_size: (\d+),", "the stream batch size"),
    "notifier_stream_batch": constant(
        "infra/src/stack/notifier.rs", r"STREAM_BATCH_SIZE: u32 = (\d+);", "the notifier's stream batch size"
    ),
    "notifier_queue_batch": constant(
        "infra/src/stack/notifier.rs", r"QUEUE_BATCH_SIZE: u32 = (\d+);", "the notifier's queue batch size"
    ),
}

COLUMNS = ["API Gateway", "DynamoDB", "Lambda", "SQS", "Secrets Manager", "CloudWatch Logs", "Data out"]


def wru(nbytes):
    return math.ceil(nbytes / KIB)


def rru_strong(nbytes):
    return math.ceil(nbytes / (4 * KIB))


def sqs_requests(payload_bytes):
    """Billed requests of one SQS call carrying `payload_bytes` (64 KiB chunks, at least one)."""
    return max(1, math.ceil(payload_bytes / (64 * KIB)))


def lambda_cost(invocations, seconds, inits):
    gb = STACK["memory_mb"] / 1024
    gb_seconds = invocations * seconds * gb + inits * ASSUMED["init_seconds"] * gb
    return invocations / MILLION * PRICES["lambda_per_million_requests"] + gb_seconds * PRICES["lambda_arm_per_gb_second"]


def logs_cost(nbytes):
    return nbytes / GB * PRICES["logs_per_gb"]


def transfer_cost(nbytes):
    return nbytes / GB * PRICES["transfer_out_per_gb"]


def ddb_cost(writes, strong_reads):
    item = ASSUMED["item_bytes"]
    return (writes * wru(item) * PRICES["ddb_wru_per_million"] + strong_reads * rru_strong(item) * PRICES["ddb_rru_per_million"]) / MILLION


def row(apigw=0.0, ddb=0.0, lam=0.0, sqs=0.0, secrets=0.0, logs=0.0, out=0.0):
    return [apigw, ddb, lam, sqs, secrets, logs, out]


def accept_and_process(batch):
    """Both ways: the POST (API Gateway, PutItem) and the processor (Lambda, UpdateItem)."""
    n = MILLION
    invocations = n / batch
    return row(
        apigw=n / MILLION * PRICES["apigw_rest_per_million"],
        ddb=ddb_cost(writes=2 * n, strong_reads=0),
        lam=lambda_cost(invocations, ASSUMED["processor_seconds"], ASSUMED["inits_per_million"]),
        logs=logs_cost(n * len(ACCESS_LOG_LINE) + invocations * ASSUMED["processor_log_bytes_per_invocation"]),
        out=transfer_cost(n * ASSUMED["accepted_answer_bytes"]),
    )


def polls(count):
    """`count` GETs per request: API Gateway, one consistent GetItem, an access-log line, the document out."""
    gets = count * MILLION
    return row(
        apigw=gets / MILLION * PRICES["apigw_rest_per_million"],
        ddb=ddb_cost(writes=0, strong_reads=gets),
        logs=logs_cost(gets * len(ACCESS_LOG_LINE)),
        out=transfer_cost(gets * ASSUMED["document_bytes"]),
    )


def webhook(stream_batch, queue_batch):
    """One delivery per request, answered 2xx at the first attempt.

    Stream path: the filtered mapping invokes the notifier, which enqueues (SendMessageBatch,
    up to 10 entries). Queue path: Lambda receives (ReceiveMessage, up to the batch size),
    the notifier POSTs and writes the delivery state (UpdateItem), Lambda deletes.
    """
    n = MILLION
    message = ASSUMED["delivery_message_bytes"]
    stream_invocations = n / stream_batch
    queue_invocations = n / queue_batch
    per_send = min(10, stream_batch)
    sends = n / per_send * sqs_requests(per_send * message)
    receives = queue_invocations * sqs_requests(queue_batch * message)
    deletes = queue_invocations  # a delete carries receipt handles, not the payload
    lam = lambda_cost(stream_invocations, ASSUMED["enqueue_seconds"], ASSUMED["inits_per_million"]) + lambda_cost(
        queue_invocations, ASSUMED["deliver_seconds"], 0
    )
    return row(
        ddb=ddb_cost(writes=n, strong_reads=0),
        lam=lam,
        sqs=(sends + receives + deletes) / MILLION * PRICES["sqs_standard_per_million"],
        secrets=ASSUMED["inits_per_million"] / 10_000 * PRICES["secrets_api_per_10k"],
        logs=logs_cost((stream_invocations + n) * ASSUMED["notifier_log_line_bytes"]),
        out=transfer_cost(n * ASSUMED["document_bytes"]),
    )


def retry():
    """Each attempt after the first, per million: SendMessage with a delay, receive, delete, an invocation, an UpdateItem."""
    n = MILLION
    return row(
        ddb=ddb_cost(writes=n, strong_reads=0),
        lam=lambda_cost(n, ASSUMED["deliver_seconds"], 0),
        sqs=3 * n * sqs_requests(ASSUMED["delivery_message_bytes"]) / MILLION * PRICES["sqs_standard_per_million"],
        logs=logs_cost(n * ASSUMED["notifier_log_line_bytes"]),
        out=transfer_cost(n * ASSUMED["document_bytes"]),
    )


def money(value):
    if value == 0:
        return "–"
    if value < 0.005:
        return "<0.01"
    cents = Decimal(repr(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{cents:,}"


def tables():
    """The two tables and the sentences that compare their rows, as the README shows them."""
    one = accept_and_process(1)  # about 0.4 requests/s: nearly every batch holds one record
    full = accept_and_process(STACK["processor_batch"])
    lines = [
        "| per 1,000,000 requests, USD | " + " | ".join(COLUMNS) + " | added | total |",
        "|---|" + "---:|" * (len(COLUMNS) + 2),
    ]
    totals, added_by = {}, {}

    def line(key, name, cells, base):
        added = sum(cells)
        total = added + sum(base) if base is not None else None
        totals[key], added_by[key] = total, added
        shown = f"**{money(total)}**" if total is not None else "–"
        lines.append(f"| {name} | " + " | ".join(money(c) for c in cells) + f" | {money(added)} | {shown} |")

    line("accept", "accept and process (POST), one record per invocation", one, base=[])
    for count in (1, 3, 10):
        line(f"poll{count}", f"+ poll: {count} GET{'s' if count > 1 else ''} per request", polls(count), one)
    line("webhook", "+ webhook, one record or message per invocation", webhook(1, 1), one)
    stream, queue = STACK["notifier_stream_batch"], STACK["notifier_queue_batch"]
    line("accept_full", f"accept and process, full batches ({STACK['processor_batch']} records)", full, base=[])
    line("webhook_full", f"+ webhook, full batches ({stream} records, {queue} messages)", webhook(stream, queue), full)
    line("retry", "each retried attempt (per million attempts)", retry(), base=None)

    month_seconds = 730 * 3600
    idle_polls = ASSUMED["idle_pollers"] * month_seconds / ASSUMED["idle_poll_seconds"]
    fixed = [
        ("the webhook secret", PRICES["secret_per_month"]),
        ("the give-up alarm (WebhookGiveUpsAlarm)", PRICES["alarm_per_month"]),
        (
            f"Lambda long-polling the idle delivery queue ({idle_polls:,.0f} ReceiveMessage)",
            idle_polls / MILLION * PRICES["sqs_standard_per_million"],
        ),
    ]
    lines += ["", "| fixed, per month, USD, with webhooks | |", "|---|---:|"]
    lines += [f"| {name} | {money(cost)} |" for name, cost in fixed]
    lines.append(f"| total | **{money(sum(cost for _, cost in fixed))}** |")

    def ratio(a, b, of=totals):
        return f"{of[a] / of[b]:.2f}"

    lines += [
        "",
        f"Polling three times costs {ratio('poll3', 'poll1')} times polling once and "
        f"{ratio('poll3', 'accept')} times not polling; ten times, {ratio('poll10', 'poll1')} times "
        f"polling once. A webhook adds {ratio('webhook', 'poll1', added_by)} times what one poll adds "
        f"at one record per invocation, {ratio('webhook_full', 'poll1', added_by)} times in full batches.",
    ]
    return "\n".join(lines)


def main():
    out = tables()
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        if out not in Path(sys.argv[2]).read_text():
            sys.exit(f"{sys.argv[2]} does not hold the tables webhook-cost.py prints; paste its output there")
        return
    if len(sys.argv) != 1:
        sys.exit("usage: python3 docs/webhook-cost.py [--check FILE]")
    print(out)


if __name__ == "__main__":
    main()
