"""Tables generated from model files: the parameter table with value, unit and source."""

from __future__ import annotations

from .spec import ModelSpec


def parameter_table(spec: ModelSpec) -> str:
    """Markdown table of every parameter: name, value as written, internal value, source, file."""
    lines = ["| parameter | value (internal units) | unit as written | source | file |",
             "|---|---|---|---|---|"]
    for p in sorted(spec.parameters, key=lambda p: (p.origin, p.name)):
        origin = p.origin.split("models/")[-1]
        lines.append(f"| {p.name} | {p.value:.4g} {p.internal_unit} | {p.unit} | {p.source.replace('|', '/')} | {origin} |")
    return "\n".join(lines)
