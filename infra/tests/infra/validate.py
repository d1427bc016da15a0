"""Validates request bodies against an API Gateway model (JSON Schema draft 4), as the
request validator does, with jsonschema's Draft4Validator. Numbers are read as decimals,
in the schema and in the bodies, so that a bound compares exactly as written.

stdin: {"schema": text, "bodies": [text]}; stdout: per body null (valid) or the first
error's message.
"""

import json
import sys
from decimal import Decimal

from jsonschema import Draft4Validator


def verdict(validator, body):
    try:
        instance = json.loads(body, parse_float=Decimal)
    except ValueError as error:
        return "not JSON: %s" % error
    error = next(iter(validator.iter_errors(instance)), None)
    return None if error is None else error.message


if __name__ == "__main__":
    case = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    schema = json.loads(case["schema"], parse_float=Decimal)
    Draft4Validator.check_schema(schema)
    validator = Draft4Validator(schema)
    json.dump([verdict(validator, body) for body in case["bodies"]], sys.stdout)
