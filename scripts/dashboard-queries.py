#!/usr/bin/env python3
"""Prints every PromQL expression of the dashboards and the Prometheus rules,
one JSON object a line: {"file", "panel", "expr", "harness", "kind"}.

Grafana's variables are replaced so that Prometheus can evaluate the query
as is: $scenario and $run_id by `.*`, $__rate_interval and $__interval by
`1m`. `harness` is true when the expression reads a harness_ metric (or a
harness: recorded one); `kind` is panel, annotation, record or alert. Standard library
only: the rule files are read with a small parser of their `expr:` fields.
"""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
VARIABLES = [
    (re.compile(r"\$\{?__rate_interval\}?"), "1m"),
    (re.compile(r"\$\{?__interval\}?"), "1m"),
    (re.compile(r"\$\{?(scenario|run_id)\}?"), ".*"),
]


def resolve(expr):
    for pattern, value in VARIABLES:
        expr = pattern.sub(value, expr)
    return expr.strip()


def is_harness(expr):
    return re.search(r"\bharness[_:]", expr) is not None


def panels(items):
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def dashboard_queries(path):
    board = json.loads(path.read_text())
    for panel in panels(board.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel.get("title", ""), target["expr"], "panel"
    for annotation in board.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            yield annotation.get("name", ""), annotation["expr"], "annotation"


def rule_queries(path):
    """`expr:` fields of a rules file, plain or `|` block scalars, with the
    rule's `record:` or `alert:` name."""
    lines = path.read_text().splitlines()
    name, kind, i = "", "record", 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip().lstrip("- ").strip()
        for key in ("record", "alert"):
            if stripped.startswith(key + ":"):
                name, kind = stripped.split(":", 1)[1].strip(), key
        if stripped.startswith("expr:"):
            value = stripped.split(":", 1)[1].strip()
            if value in ("|", ">", "|-", ">-"):
                indent = len(line) - len(line.lstrip())
                block = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                    block.append(lines[i].strip())
                    i += 1
                yield name, " ".join(b for b in block if b), kind
                continue
            yield name, value.strip("'\""), kind
        i += 1


def main():
    out = []
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        out += [(path, *q) for q in dashboard_queries(path)]
    for path in sorted((ROOT / "prometheus" / "rules").glob("*.yml")):
        out += [(path, *q) for q in rule_queries(path)]
    for path, panel, expr, kind in out:
        expr = resolve(expr)
        print(json.dumps({"file": str(path.relative_to(ROOT)), "panel": panel, "expr": expr,
                          "harness": is_harness(expr), "kind": kind}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
