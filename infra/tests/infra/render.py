"""Renders API Gateway mapping templates with airspeed-ext, the VTL engine LocalStack uses,
with $input, $util and $context as the API Gateway developer guide defines them.

stdin: a JSON list of cases {"template", "body", "params": {"path", "querystring",
"header"}, "context", "stage_variables"}; stdout: a JSON list of {"output", "status", "headers"} or
{"error"}. $util.escapeJavaScript follows AWS (Apache commons-lang), not LocalStack, which
leaves ' alone and so hides the bug the quote fix in the templates is for.
"""

import base64
import json
import sys
import urllib.parse

from airspeed import Template, operators

# java.lang.String methods the templates call that airspeed-ext lacks, as Java defines them
# (ASCII: the callback URL is checked to be ASCII before it is lowercased).
operators.__additional_methods__[str]["toLowerCase"] = lambda self: self.lower()


def escape_javascript(text):
    """commons-lang StringEscapeUtils.escapeJavaScript, over UTF-16 code units as Java."""
    units = text.encode("utf-16-be")
    out = []
    for i in range(0, len(units), 2):
        ch = (units[i] << 8) | units[i + 1]
        if ch > 0x7F:
            out.append("\\u%04X" % ch)
        elif ch < 32:
            named = {8: "\\b", 10: "\\n", 9: "\\t", 12: "\\f", 13: "\\r"}
            out.append(named.get(ch, "\\u%04X" % ch))
        else:
            c = chr(ch)
            out.append({"'": "\\'", '"': '\\"', "\\": "\\\\", "/": "\\/"}.get(c, c))
    return "".join(out)


def java_url_encode(text):
    """java.net.URLEncoder.encode(text, "UTF-8")."""
    return urllib.parse.quote_plus(text, safe="*").replace("~", "%7E")


class Util:
    def escapeJavaScript(self, text):
        return escape_javascript(text)

    def parseJson(self, text):
        return json.loads(text)

    def urlEncode(self, text):
        return java_url_encode(text)

    def urlDecode(self, text):
        return urllib.parse.unquote_plus(text)

    def base64Encode(self, text):
        return base64.b64encode(text.encode()).decode()

    def base64Decode(self, text):
        return base64.b64decode(text).decode()


def json_path(document, path):
    """The JSONPath subset the templates use: $, $.a.b."""
    value = document
    for key in [part for part in path.lstrip("$").split(".") if part]:
        value = value.get(key) if isinstance(value, dict) else None
    return value


class Input:
    def __init__(self, body, params):
        # As the case gives it: the tests try an empty body both as "" and as {}.
        self.body = body
        self._params = {
            "path": params.get("path", {}),
            "querystring": params.get("querystring", {}),
            "header": params.get("header", {}),
        }

    def params(self, name=None):
        if name is None:
            return self._params
        for where in ("path", "querystring", "header"):
            if name in self._params[where]:
                return self._params[where][name]
        return ""

    def path(self, path):
        return json_path(json.loads(self.body), path)

    def json(self, path):
        return json.dumps(json_path(json.loads(self.body), path))


def render(case):
    context = dict(case["context"])
    context["responseOverride"] = {"status": None, "header": {}}
    namespace = {
        "input": Input(case.get("body"), case.get("params", {})),
        "util": Util(),
        "context": context,
        "stageVariables": case.get("stage_variables", {}),
    }
    try:
        output = Template(case["template"]).merge(namespace)
    except Exception as error:  # a template that does not render is the finding
        return {"error": "%s: %s" % (type(error).__name__, error)}
    override = context["responseOverride"]
    return {"output": output, "status": override["status"], "headers": override["header"]}


if __name__ == "__main__":
    cases = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    json.dump([render(case) for case in cases], sys.stdout)
