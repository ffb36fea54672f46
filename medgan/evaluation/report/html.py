"""``report.html``: one self-contained page (CSS inline, images embedded as data URIs, no script).

Why self-contained: a report is mailed, attached to a ticket or opened from an air-gapped
workstation; a page that loads nothing from anywhere opens the same everywhere. Everything
shown comes from ``report.json``'s content plus the PNG figures, so the two never disagree.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

VERDICT_COLOURS = {"pass": "#1b7f3b", "warn": "#b26a00", "fail": "#b3261e", "skipped": "#6b6b6b", "info": "#245b9e"}
GROUP_TITLES = {
    "realism": "Realism",
    "intensity": "Intensity",
    "diversity": "Diversity and mode collapse",
    "memorisation": "Memorisation and privacy",
    "artifacts": "Artifacts",
}
STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1100px;
       color: #1d1d1d; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.35em 0.5em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
.verdict { color: white; border-radius: 0.3em; padding: 0.1em 0.5em; font-weight: 600; white-space: nowrap; }
.summary span.verdict { margin-right: 0.6em; }
figure { margin: 0.8em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.88em; color: #555; }
.muted { color: #666; font-size: 0.9em; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _badge(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#444")
    return f'<span class="verdict" style="background:{colour}">{html.escape(verdict)}</span>'


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def image_tag(path: Path, alt: str) -> str:
    """An ``<img>`` with the PNG at ``path`` embedded as a data URI."""
    encoded = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'


def _figure(path: Path, caption: str) -> str:
    return f"<figure>{image_tag(path, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _checks_table(checks: Sequence[Mapping[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(c['title'])}<br><code>{html.escape(c['id'])}</code></td><td>{_badge(c['verdict'])}</td>"
        f"<td>{_number(c['value'])}</td><td>{html.escape(c['threshold'])}</td><td>{html.escape(c['meaning'])}</td></tr>"
        for c in checks
    )
    return (
        "<table><tr><th>check</th><th>verdict</th><th>value</th><th>threshold</th><th>what it means</th></tr>"
        f"{rows}</table>"
    )


def _inputs_table(inputs: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in inputs.items())
    return f"<table>{rows}</table>"


def _translation_section(translation: Mapping[str, Any], figures_dir: Path) -> str:
    summary = translation.get("summary", {})
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_number(stats.get('mean'))}</td>"
        f"<td>{_number(stats.get('ci_low'))} .. {_number(stats.get('ci_high'))}</td>"
        f"<td>{_number(stats.get('n'))}</td></tr>"
        for name, stats in summary.items()
        if isinstance(stats, Mapping)
    )
    parts = [
        "<h2>Translation</h2>",
        f"<p class='muted'>From {html.escape(str(translation.get('source', '')))}</p>",
        f"<table><tr><th>metric</th><th>mean</th><th>95 % CI</th><th>n</th></tr>{rows}</table>",
    ]
    per_subject = translation.get("per_subject", [])
    if per_subject:
        keys = [k for k in per_subject[0] if isinstance(per_subject[0][k], (int, float))][:8]
        head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        body = "".join(
            f"<tr><td>{html.escape(str(row.get('subject', i)))}</td>"
            + "".join(f"<td>{_number(row.get(k))}</td>" for k in keys)
            + "</tr>"
            for i, row in enumerate(per_subject)
        )
        parts.append(f"<table><tr><th>case</th>{head}</tr>{body}</table>")
    for name in translation.get("figures", []):
        parts.append(_figure(figures_dir / name, "translation montage (source, CT, pseudo-CT, |error|)"))
    return "".join(parts)


def _downstream_section(downstream: Mapping[str, Any], figures_dir: Path) -> str:
    verdicts = "".join(f"<li>{html.escape(text)}</li>" for text in downstream.get("verdicts", []))
    cells = downstream.get("cells", [])
    rows = "".join(
        f"<tr><td>{html.escape(str(c.get('task')))}</td><td>{html.escape(str(c.get('condition')))}</td>"
        f"<td>{html.escape(str(c.get('n_real')))}</td><td>{html.escape(str(c.get('ratio')))}</td>"
        f"<td>{html.escape(str(c.get('metric')))}</td><td>{_number(c.get('estimate'))}</td>"
        f"<td>{_number(c.get('low'))} .. {_number(c.get('high'))}</td></tr>"
        for c in cells
    )
    parts = [
        "<h2>Downstream study</h2>",
        f"<p class='muted'>From {html.escape(str(downstream.get('source', '')))}: "
        f"{downstream.get('n_runs_finished', '?')} of {downstream.get('n_runs_planned', '?')} runs finished.</p>",
        f"<ul>{verdicts}</ul>" if verdicts else "<p>No verdicts (no finished comparison).</p>",
        "<table><tr><th>task</th><th>condition</th><th>real cases</th><th>synthetic:real</th><th>metric</th>"
        f"<th>estimate</th><th>95 % CI</th></tr>{rows}</table>",
    ]
    for name in downstream.get("figures", []):
        parts.append(_figure(figures_dir / name, f"downstream: {name}"))
    return "".join(parts)


def render_report(content: Mapping[str, Any], figures_dir: Path) -> str:
    """The page for ``report.json``'s ``content``; figure names in it are files under ``figures_dir``."""
    checks = content["checks"]
    groups = content["verdicts"]
    summary = "".join(
        f"<span>{html.escape(GROUP_TITLES.get(g, g))}: {_badge(v)}</span> " for g, v in groups.items() if g != "overall"
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>medgan report</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>medgan report {_badge(groups['overall'])}</h1>",
        f"<p class='muted'>medgan {html.escape(content['medgan_version'])}, written {html.escape(content['created'])}."
        " Every value below is recomputed from the inputs by <code>medgan report</code>; thresholds can be changed "
        "with <code>--set thresholds.&lt;check&gt;.warn=...</code>.</p>",
        f"<p class='summary'>{summary}</p>",
        "<h2>Inputs</h2>",
        _inputs_table(content["inputs"]),
        "<h2>Checks</h2>",
        _checks_table(checks),
    ]
    for group, title in GROUP_TITLES.items():
        figures = [(name, c["title"]) for c in checks if c["id"].startswith(group + ".") for name in c["figures"]]
        if figures:
            parts.append(f"<h2>{html.escape(title)}</h2>")
            parts.extend(_figure(figures_dir / name, caption) for name, caption in figures)
    if content.get("montages"):
        parts.append("<h2>Samples</h2>")
        parts.extend(_figure(figures_dir / m["file"], m["caption"]) for m in content["montages"])
    if content.get("translation"):
        parts.append(_translation_section(content["translation"], figures_dir))
    if content.get("downstream"):
        parts.append(_downstream_section(content["downstream"], figures_dir))
    parts.append("</body></html>")
    return "\n".join(parts)
