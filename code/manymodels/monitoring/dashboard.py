"""The monitoring dashboard: one self-contained HTML file (plotly.js embedded, no server, no
network), and the short Markdown summary a CI job summary shows.

Sections: overview, alerts, pipeline runs, model health per partition, stale models, drift, data
quality, and predictions against actuals for any series (pick a partition and a series).
"""

from __future__ import annotations

import html
import json

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from manymodels.report import fmt, markdown_table

__all__ = ["render_dashboard", "render_markdown"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f5f6f8;
color:#1d2330}
header{background:#1d2330;color:#fff;padding:16px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9ced8;font-size:13px}main{padding:8px 28px 40px}
section{background:#fff;border-radius:8px;padding:14px 18px;margin:16px 0;
box-shadow:0 1px 2px rgba(0,0,0,.08)}h2{font-size:17px;margin:0 0 10px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border-radius:8px;
padding:12px 18px;min-width:130px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card b{display:block;font-size:26px}.card.bad b{color:#c62828}.card span{font-size:12px;
color:#5b6473}table{border-collapse:collapse;font-size:13px;width:100%}
th,td{border-bottom:1px solid #e3e6eb;padding:4px 8px;text-align:left}th{background:#f0f2f5}
.alert{color:#c62828;font-weight:600}.ok{color:#2e7d32}.warn{color:#ef6c00}
.note{color:#5b6473;font-size:12px}select{font-size:14px;margin-right:12px}
nav a{color:#c9ced8;margin-right:14px;font-size:13px}
"""


def _e(value: object) -> str:
    return html.escape(fmt(value))


def _table(rows: list[dict], columns: list[str], headers: list[str] | None = None) -> str:
    if not rows:
        return '<p class="note">nothing to show</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers or columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            cls = v if c == "status" and v in ("alert", "ok", "warn") else ""
            cls = "alert" if c == "status" and str(v).startswith(("stale", "FAILED")) else cls
            cells.append(f'<td class="{cls}">{_e(v)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _fig(fig: go.Figure, div: str, height: int = 360) -> str:
    fig.update_layout(
        height=height, margin={"l": 60, "r": 20, "t": 30, "b": 60}, template="plotly_white"
    )
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div)


def _health(report: dict) -> str:
    weekly = report["weekly"]
    if not weekly:
        return (
            '<p class="note">no forecast has its actual yet: accuracy appears here once the '
            "weeks that were forecast have been sold and the data conditioned again</p>"
        )
    parts = sorted({r["partition"] for r in weekly})
    weeks = sorted({r["week"] for r in weekly})
    cell = {(r["partition"], r["week"]): r["mape"] for r in weekly}
    z = [[cell.get((p, w)) for w in weeks] for p in parts]
    heat = go.Figure(
        go.Heatmap(
            z=z, x=weeks, y=parts, colorscale="RdYlGn_r", zmin=0, zmax=1, colorbar={"title": "MAPE"}
        )
    )
    heat.update_layout(title="Weekly MAPE per partition (latest forecast of each week)")
    rows = []
    for pid, info in report["partitions"].items():
        r = info.get("rolling") or {}
        rows.append(
            {
                "partition": pid,
                "kind": info.get("kind"),
                "version": info.get("version"),
                "rolling_mape": r.get("mape"),
                "wape": r.get("wape"),
                "rmse": r.get("rmse"),
                "rmse_zero": r.get("rmse_zero"),
                "bias": r.get("bias"),
                "metric": info.get("metric", "mape"),
                "bar": info.get("bar", info.get("mape_bar")),
                "backtest": info.get("backtest_error", info.get("backtest_mape")),
                "status": info.get("status"),
                "alerts": ", ".join(info.get("alerts", [])),
            }
        )
    rows.sort(key=lambda r: (r["status"] != "alert", r["partition"]))
    cols = [
        "partition",
        "kind",
        "version",
        "rolling_mape",
        "wape",
        "rmse",
        "rmse_zero",
        "bias",
        "metric",
        "bar",
        "backtest",
        "status",
        "alerts",
    ]
    heads = [
        "partition",
        "model",
        "version",
        "rolling MAPE",
        "WAPE",
        "RMSE",
        "RMSE0",
        "bias",
        "gate metric",
        "bar",
        "backtest",
        "status",
        "alerts",
    ]
    return _fig(heat, "plot-health", max(320, 18 * len(parts) + 120)) + _table(rows, cols, heads)


def _runs(report: dict) -> str:
    runs = report["runs"]
    if not runs:
        return '<p class="note">no pipeline run in MLflow yet</p>'
    fig = go.Figure()
    for pipeline in sorted({r["pipeline"] for r in runs}):
        sel = [r for r in runs if r["pipeline"] == pipeline]
        fig.add_bar(
            x=[r["start"][:16] for r in sel],
            y=[r["seconds"] for r in sel],
            name=pipeline,
            text=[r["status"] for r in sel],
        )
    fig.update_layout(title="Pipeline runs: duration (s) and status", yaxis_title="seconds")
    rows = [
        {
            "pipeline": r["pipeline"],
            "start": r["start"][:19],
            "seconds": r["seconds"],
            "status": r["status"],
            "run": r["run_id"][:8],
            "steps": ", ".join(
                f"{k} {fmt(v, 1)}"
                for k, v in sorted(r["metrics"].items())
                if k.endswith("_seconds") or k.startswith(("gate_", "partitions_"))
            ),
        }
        for r in reversed(runs[-15:])
    ]
    return _fig(fig, "plot-runs", 300) + _table(
        rows,
        ["pipeline", "start", "seconds", "status", "run", "steps"],
        ["pipeline", "started (UTC)", "seconds", "status", "run", "step figures"],
    )


def _stale(report: dict) -> str:
    rows = report["staleness"]
    if not rows:
        return '<p class="note">no champion in this registry</p>'
    colors = {"stale": "#c62828", "about to go stale": "#ef6c00", "fresh": "#2e7d32"}
    fig = go.Figure(
        go.Bar(
            x=[r["partition"] for r in rows],
            y=[r["age_days"] for r in rows],
            marker_color=[colors[r["status"]] for r in rows],
            text=[r["age_basis"] for r in rows],
        )
    )
    fig.update_layout(
        title="Days since each champion was last validated (bar text: basis)", yaxis_title="days"
    )
    cols = [
        "partition",
        "version",
        "kind",
        "trained_at",
        "last_validated_at",
        "age_basis",
        "age_days",
        "days_left",
        "status",
    ]
    return _fig(fig, "plot-stale", 320) + _table(rows, cols)


def _drift(report: dict) -> str:
    drift = report["drift"]
    if not drift:
        return '<p class="note">no champion with a drift profile</p>'
    parts = sorted(drift)
    feats = sorted({r["feature"] for rows in drift.values() for r in rows if "psi" in r})
    psi = {(p, r["feature"]): r["psi"] for p in parts for r in drift[p] if "psi" in r}
    fig = go.Figure(
        go.Heatmap(
            z=[[psi.get((p, f)) for f in feats] for p in parts],
            x=feats,
            y=parts,
            colorscale="YlOrRd",
            zmin=0,
            zmax=2,
            colorbar={"title": "PSI"},
        )
    )
    fig.update_layout(title="Population stability index per partition and feature")
    flagged = [
        {"partition": p, **r, "new_categories": ", ".join(r.get("new_categories", []))}
        for p in parts
        for r in drift[p]
        if r.get("status") in ("alert", "warn", "no profile")
    ]
    flagged.sort(key=lambda r: (r["status"] != "alert", -(r.get("psi") or 0)))
    alerts = [r for r in flagged if r["status"] != "warn"]
    warns = [r for r in flagged if r["status"] == "warn"]
    note = (
        f'<p class="note">{len(alerts)} feature(s) in alert; {len(warns)} warning(s), the '
        f"{min(len(warns), 15)} largest shown</p>"
    )
    cols = [
        "partition",
        "feature",
        "kind",
        "psi",
        "ks",
        "ks_pvalue",
        "share_shift",
        "mean",
        "reference_median",
        "status",
    ]
    table = _table(alerts + warns[:15], cols)
    return _fig(fig, "plot-drift", max(320, 18 * len(parts) + 120)) + note + table


def _quality(report: dict) -> str:
    rows = report["quality"]
    if not rows:
        return '<p class="note">no validation report found</p>'
    fig = go.Figure()
    x = [f"{r['as_of'] or '?'} ({r['run']})" for r in rows]
    fig.add_bar(x=x, y=[r["errors"] for r in rows], name="errors", marker_color="#c62828")
    fig.add_bar(x=x, y=[r["warnings"] for r in rows], name="warnings", marker_color="#ef6c00")
    fig.add_scatter(x=x, y=[r["rows"] for r in rows], name="rows", yaxis="y2")
    fig.update_layout(
        title="Validation findings and rows per monitored data version",
        yaxis2={"overlaying": "y", "side": "right", "title": "rows"},
    )
    cols = ["run", "as_of", "data_version", "rows", "errors", "warnings", "checks"]
    shown = [r | {"rows": int(r["rows"] or 0), "checks": ", ".join(r["checks"])} for r in rows]
    return _fig(fig, "plot-quality", 300) + _table(list(reversed(shown)), cols)


def _series_data(report: dict) -> dict:
    data: dict[str, dict] = {}
    for r in report["series"]:
        key = f"{r['store_id']} / {r['product_id']}"
        s = data.setdefault(r["partition"], {}).setdefault(key, {"w": [], "a": [], "p": []})
        s["w"].append(r["week"])
        s["a"].append(r["units"])
        s["p"].append(r["prediction"])
    return data


SERIES_JS = """
(function(){
const data = JSON.parse(document.getElementById('series-data').textContent);
const first = JSON.parse(document.getElementById('series-first').textContent);
const ps = document.getElementById('pick-partition'), ss = document.getElementById('pick-series');
Object.keys(data).sort().forEach(p => ps.add(new Option(p, p)));
if (first && data[first]) ps.value = first;
function series(){ ss.innerHTML=''; Object.keys(data[ps.value]||{}).sort()
  .forEach(s => ss.add(new Option(s, s))); draw(); }
function draw(){ const s=(data[ps.value]||{})[ss.value]; if(!s) return;
  Plotly.react('plot-series', [
   {x:s.w, y:s.a, name:'actual', mode:'lines+markers'},
   {x:s.w, y:s.p, name:'forecast', mode:'lines+markers', line:{dash:'dash'}}],
   {title:'Actual vs forecast: '+ps.value+' '+ss.value, height:360, template:'plotly_white',
    margin:{l:60,r:20,t:40,b:50}, yaxis:{title:'units'}});
  document.getElementById('plot-series').setAttribute('data-drawn', ps.value+'|'+ss.value); }
ps.onchange = series; ss.onchange = draw;
if (Object.keys(data).length) series();
})();
"""


def render_dashboard(report: dict) -> str:
    """The dashboard of ``report`` (:func:`manymodels.monitoring.summary.build_report`)."""
    o = report["overview"]
    cards = [
        ("partitions", o["partitions"], False),
        ("in alert", o["in_alert"], o["in_alert"] > 0),
        ("alerts", o["alerts"], o["alerts"] > 0),
        ("stale", o["stale"], o["stale"] > 0),
        ("about to go stale", o["about_to_go_stale"], o["about_to_go_stale"] > 0),
        ("drifted", o["drifted"], o["drifted"] > 0),
        ("forecasts with actuals", o["forecasts_with_actuals"], False),
    ]
    card_html = "".join(
        f'<div class="card{" bad" if bad else ""}"><b>{_e(v)}</b><span>{_e(k)}</span></div>'
        for k, v, bad in cards
    )
    alerts = _table(report["alerts"], ["partition", "kind", "message"])
    problems = _table(report["problems"], ["severity", "what", "message"])
    series = _series_data(report)
    first = (report["partitions_in_alert"] or sorted(series) or [None])[0]
    payload = json.dumps(series, separators=(",", ":")).replace("</", "<\\/")
    d = report["data"]
    sections = [
        (
            "overview",
            "Overview",
            f'<div class="cards">{card_html}</div>'
            f'<p class="note">data {_e(d["data_version"])}, weeks {_e(d["first_week"])} .. '
            f"{_e(d['last_actual_week'])}; predictions from {_e(d['predictions'])} (scoring dates: "
            f"{_e(', '.join(d['scoring_dates']) or 'none')})</p>",
        ),
        ("alerts", f"Alerts ({len(report['alerts'])})", alerts),
        ("input", "Input checks", problems),
        ("health", "Model health per partition", _health(report)),
        (
            "series",
            "Predictions vs actuals",
            '<label>partition <select id="pick-partition"></select></label>'
            '<label>series <select id="pick-series"></select></label>'
            '<div id="plot-series"></div>'
            + ("" if series else '<p class="note">no served prediction yet</p>'),
        ),
        ("drift", "Input drift", _drift(report)),
        ("stale", "Stale models", _stale(report)),
        ("quality", "Data quality", _quality(report)),
        ("pipeline", "Pipeline steps", _runs(report)),
    ]
    nav = "".join(f'<a href="#{k}">{html.escape(t.split(" (")[0])}</a>' for k, t, _ in sections)
    body = "".join(
        f'<section id="{k}"><h2>{html.escape(t)}</h2>{c}</section>' for k, t, c in sections
    )
    title = f"manymodels monitoring ({report['env']}, {report['as_of']})"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{CSS}</style><script>{get_plotlyjs()}</script></head><body>"
        f"<header><h1>{_e(title)}</h1><p>{_e(o['in_alert'])} partition(s) in alert; "
        f"retrain: {_e(' '.join(report['retrain']) or 'none')}</p><nav>{nav}</nav></header>"
        f"<main>{body}</main>"
        f'<script type="application/json" id="series-data">{payload}</script>'
        f'<script type="application/json" id="series-first">{json.dumps(first)}</script>'
        f"<script>{SERIES_JS}</script></body></html>"
    )


def render_markdown(report: dict) -> str:
    """A short Markdown summary (job summaries, logs): overview and alerts."""
    o = report["overview"]
    lines = [
        f"## Monitoring {report['as_of']} ({report['env']})",
        "",
        f"{o['partitions']} partitions · **{o['in_alert']} in alert** · {o['alerts']} alerts · "
        f"{o['stale']} stale · {o['about_to_go_stale']} about to go stale · "
        f"{o['drifted']} drifted · {o['forecasts_with_actuals']} forecasts with actuals",
        "",
        f"Retrain: {' '.join(report['retrain']) or 'none'}",
        "",
    ]
    for p in report["problems"]:
        lines.append(f"- {p['severity']}: {p['what']}: {p['message']}")
    lines.append("")
    return "\n".join(lines) + markdown_table(report["alerts"], ["partition", "kind", "message"])
