"""`doit graph [TASK ...] [--out FILE]`: the planned steps as a picture, coloured by what will run.

Mermaid text by default (GitHub and GitLab render it in Markdown); `--out` writes `.mmd`, `.dot`,
or `.svg`/`.png` through Graphviz's `dot`. One node per step per pipeline, grouped by pipeline,
an edge for each step's outputs another reads; up to date, will run (with the first reason) or
failed last time, as `doit why` says.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlops.common.files import write_atomically
from mlops.doit_adapter.why import StatusCommand

STYLES = {"uptodate": ("#d4edda", "#2e7d32"), "run": ("#fff3cd", "#b26a00"), "failed": ("#f8d7da", "#c62828")}
LEGEND = {"uptodate": "up to date", "run": "will run", "failed": "failed last time"}
FORMATS = (".mmd", ".dot", ".svg", ".png")

opt_out = {"name": "out", "long": "out", "type": str, "default": "",
           "help": "write the graph to FILE: .mmd (Mermaid), .dot, or .svg/.png (needs Graphviz's dot)"}


class Graph(StatusCommand):
    """doit command: print the graph of the planned steps as Mermaid, or write it with --out."""

    name = "graph"
    doc_purpose = "show the steps as a graph (Mermaid text; --out FILE for .dot, .svg or .png)"
    doc_usage = "[TASK ...] [--out FILE]"
    doc_description = "Nodes are steps, grouped by pipeline, coloured by status: up to date, will run, failed."
    cmd_options = (opt_out,)

    def _execute(self, out: str = "", pos_args: list[str] | None = None) -> int:
        suffix = Path(out).suffix if out else ".mmd"
        if suffix not in FORMATS:
            sys.exit(f"mlops: error: --out {out}: write one of {', '.join(FORMATS)}")
        if suffix in (".svg", ".png") and shutil.which("dot") is None:
            sys.exit(f"mlops: error: --out {out} needs Graphviz's dot, which is not installed (Debian and Ubuntu: "
                     "apt-get install graphviz; macOS: brew install graphviz); .mmd and .dot need nothing")
        nodes = [(task, _status(reasons), reasons) for task, reasons in self.statuses(pos_args or [])]
        edges = _edges([task for task, _, _ in nodes])
        text = mermaid(nodes, edges) if suffix == ".mmd" else dot(nodes, edges)
        if not out:
            self.outstream.write(text)
        elif suffix in (".mmd", ".dot"):
            write_atomically(out, text)
        else:
            rendered = subprocess.run(["dot", f"-T{suffix[1:]}"], input=text.encode(), capture_output=True)
            if rendered.returncode != 0:
                sys.exit(f"mlops: error: Graphviz's dot failed: {rendered.stderr.decode(errors='replace').strip()}")
            Path(out).write_bytes(rendered.stdout)
        return 0


def _status(reasons: list[str]) -> str:
    if not reasons:
        return "uptodate"
    return "failed" if reasons[0].startswith("failed last time") else "run"


def _edges(tasks: list[Any]) -> list[tuple[str, str]]:
    """Return (from, to) for each step whose outputs another step reads (or that it needs, for a dated one)."""
    names = {task.name for task in tasks}
    maker = {target: task.name for task in tasks for target in task.targets}
    edges = set()
    for task in tasks:
        edges |= {(maker[dep], task.name) for dep in task.file_dep if dep in maker}
        edges |= {(dep, task.name) for dep in task.task_dep if dep in names}
    return sorted(edges)


def _pipelines(nodes: list[tuple[Any, str, list[str]]]) -> dict[str, list[tuple[Any, str, list[str]]]]:
    grouped: dict[str, list[tuple[Any, str, list[str]]]] = {}
    for node in nodes:
        grouped.setdefault(node[0].name.partition(":")[2] or node[0].name, []).append(node)
    return grouped


def _id(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _label(task: Any, reasons: list[str]) -> str:
    kind = task.name.partition(":")[0]
    return f"{kind}: {reasons[0]}" if reasons else kind


def mermaid(nodes: list[tuple[Any, str, list[str]]], edges: list[tuple[str, str]]) -> str:
    """Return the graph as a Mermaid flowchart."""
    lines = ["flowchart LR"]
    for pipeline, members in _pipelines(nodes).items():
        lines.append(f"  subgraph {_id(pipeline)}[{pipeline}]")
        lines += [f'    {_id(task.name)}["{_mermaid_text(_label(task, reasons))}"]:::{status}'
                  for task, status, reasons in members]
        lines.append("  end")
    lines += [f"  {_id(start)} --> {_id(end)}" for start, end in edges]
    lines += [f"  classDef {status} fill:{fill},stroke:{stroke}" for status, (fill, stroke) in STYLES.items()]
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def dot(nodes: list[tuple[Any, str, list[str]]], edges: list[tuple[str, str]]) -> str:
    """Return the graph in Graphviz's DOT language."""
    lines = ["digraph steps {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fontname=Helvetica];']
    for pipeline, members in _pipelines(nodes).items():
        lines.append(f'  subgraph "cluster_{pipeline}" {{')
        lines.append(f'    label="{pipeline}";')
        for task, status, reasons in members:
            fill, stroke = STYLES[status]
            tooltip = "; ".join(reasons) or LEGEND[status]
            lines.append(f'    "{task.name}" [label="{task.name.partition(":")[0]}", fillcolor="{fill}", '
                         f'color="{stroke}", tooltip="{_dot_text(tooltip)}"];')
        lines.append("  }")
    lines += [f'  "{start}" -> "{end}";' for start, end in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
