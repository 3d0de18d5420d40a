"""Results tables → a self-contained HTML report (PNG figures embedded as base64), the PNGs and
the CSVs they were drawn from.

Each figure names the columns it needs; when the results lack them the figure is skipped and the
report (and the log) says which columns were missing.  matplotlib (Agg) and jinja2 are imported
inside functions: ``import orinprof.report`` works on a bare install.
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from orinprof import results
from orinprof.errors import MissingDependency, OrinprofError

log = logging.getLogger(__name__)

#: claims.toml beside the working directory, as ``orinprof cards validate`` reads it by default
DEFAULT_CLAIMS = Path("claims.toml")
CLASS_COLOURS = {
    "attention": "#1f77b4",
    "ffn": "#ff7f0e",
    "norm": "#2ca02c",
    "embedding": "#9467bd",
    "other": "#7f7f7f",
    "mixed": "#bcbd22",
    "fused-unattributed": "#8c564b",
    "reformat": "#e377c2",
}
BASELINES = ("fp16", "fp32")


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    png: str | None  # file name under the output directory; None when skipped
    note: str = ""


@dataclass(frozen=True)
class Report:
    out_dir: Path
    html: Path
    figures: tuple[Figure, ...]
    tables: tuple[Path, ...]
    skipped: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class _Inputs:
    summary: pd.DataFrame
    layers: pd.DataFrame | None
    comparison: pd.DataFrame | None
    telemetry: pd.DataFrame | None
    verdicts: pd.DataFrame | None
    runs: list[dict[str, Any]]
    #: card 9's claimed ranges by comparison column (from claims.toml), shaded on the sweep figure
    card_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


def _run_dirs(sources: Sequence[Path]) -> list[Path]:
    dirs: list[Path] = []
    for src in sources:
        src = Path(src)
        if not src.exists():
            raise OrinprofError(f"{src} does not exist", "pass run directories written by `orinprof profile`")
        if (src / "summary.csv").exists():
            dirs.append(src)
        elif src.is_dir():
            subs = sorted(p for p in src.iterdir() if (p / "summary.csv").exists())
            if not subs:
                raise OrinprofError(f"no summary.csv in {src} or its subdirectories", "pass run directories")
            dirs.extend(subs)
        else:
            raise OrinprofError(f"{src} is not a run directory", "pass run directories (folders with summary.csv)")
    return dirs


def _optional(dirs: list[Path], name: str) -> pd.DataFrame | None:
    have = [d for d in dirs if (d / name).exists()]
    if not have:
        return None
    frames = []
    for d in have:
        try:
            frames.append(pd.read_csv(d / name))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise OrinprofError(f"{d / name} is not a readable CSV", str(err).splitlines()[0]) from err
    return pd.concat(frames, ignore_index=True)


def _read(sources: Sequence[Path]) -> _Inputs:
    dirs = _run_dirs(sources)
    # summary is required and checked against its schema; the rest are optional and each figure
    # checks the columns it needs, so a partial result still gives a partial report
    summary = pd.concat([pd.read_csv(d / "summary.csv") for d in dirs], ignore_index=True)
    runs = []
    for d in dirs:
        path = d / "run.json"
        if path.exists():
            try:
                runs.append(json.loads(path.read_text()))
            except json.JSONDecodeError:
                log.warning("%s is not valid JSON; fingerprint omitted", path)
    return _Inputs(
        summary=summary,
        layers=_optional(dirs, "layers.csv"),
        comparison=_optional(dirs, "comparison.csv"),
        telemetry=_optional(dirs, "telemetry.csv"),
        verdicts=_optional(dirs, "verdicts.csv"),
        runs=runs,
    )


def _missing(df: pd.DataFrame | None, table: str, columns: Sequence[str]) -> str | None:
    if df is None:
        return f"no {table} in the results"
    lacking = [c for c in columns if c not in df.columns]
    if lacking:
        return f"{table} lacks column(s) {', '.join(lacking)}"
    if df.empty:
        return f"{table} is empty"
    return None


def _plans_in_order(plans: Sequence[str]) -> list[str]:
    order = {p: i for i, p in enumerate(results.PRECISIONS)}
    return sorted(dict.fromkeys(plans), key=lambda p: order.get(p, len(order)))


def _case_label(row: pd.Series) -> str:
    return f"{row['model']} · {row['backend']} · b{row['batch']} s{row['seq_len']}"


# ----------------------------------------------------------------------------- figures


def _fig_class_bars(inp: _Inputs, plt: Any) -> Any:
    s = inp.summary
    cases = s.drop_duplicates(["model", "backend", "batch", "seq_len"])
    fig, axes = plt.subplots(1, len(cases), figsize=(max(5.5, 4.5 * len(cases)), 4.2), squeeze=False)
    for ax, (_, case) in zip(axes[0], cases.iterrows(), strict=True):
        g = s[(s["model"] == case["model"]) & (s["backend"] == case["backend"]) & (s["seq_len"] == case["seq_len"])]
        g = g.drop_duplicates("precision", keep="last").set_index("precision")
        g = g.loc[_plans_in_order(list(g.index))]
        other = g["other_ms"] + g.get("norm_ms", 0) + g.get("embedding_ms", 0)
        x = range(len(g))
        ax.bar(x, g["attention_ms"], color=CLASS_COLOURS["attention"], label="attention")
        ax.bar(x, g["ffn_ms"], bottom=g["attention_ms"], color=CLASS_COLOURS["ffn"], label="FFN")
        ax.bar(x, other, bottom=g["attention_ms"] + g["ffn_ms"], color=CLASS_COLOURS["other"], label="other")
        err = [
            g["e2e_median_ms"] - g["e2e_median_ci_low_ms"],
            g["e2e_median_ci_high_ms"] - g["e2e_median_ms"],
        ]
        ax.errorbar(x, g["e2e_median_ms"], yerr=err, fmt="D", color="black", capsize=4, label="e2e median (95% CI)")
        ax.set_xticks(list(x), list(g.index), rotation=20)
        ax.set_ylabel("ms per inference")
        ax.set_title(_case_label(case), fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    fig.suptitle("Where the time goes: layer classes (profiling run) and end-to-end median (timing run)")
    fig.subplots_adjust(bottom=0.24)
    return fig


def _fig_waterfall(inp: _Inputs, plt: Any, top_n: int = 15) -> Any:
    layers = inp.layers
    assert layers is not None
    case = layers.iloc[0]
    g = layers[(layers["model"] == case["model"]) & (layers["seq_len"] == case["seq_len"])]
    plans = _plans_in_order(list(g["precision"].unique()))
    # the comparison's own baseline (fp32 on CPUs, fp16 on GPUs); else the first of BASELINES present
    recorded = inp.comparison["baseline"].dropna().unique() if inp.comparison is not None else []
    base = next((p for p in (*recorded, *BASELINES) if p in plans), plans[0])
    shown = [base, *[p for p in plans if p != base and p.startswith("int8")]][:3]
    fig, axes = plt.subplots(1, len(shown), figsize=(6.2 * len(shown), 0.32 * top_n + 1.8), squeeze=False, sharex=True)
    for ax, plan in zip(axes[0], shown, strict=True):
        p = g[g["precision"] == plan].copy()
        p["median_ms"] = pd.to_numeric(p["median_ms"], errors="coerce")
        p = p.dropna(subset=["median_ms"]).nlargest(top_n, "median_ms")
        start = p["median_ms"].cumsum() - p["median_ms"]
        colours = [CLASS_COLOURS.get(c, "#7f7f7f") for c in p["layer_class"]]
        y = range(len(p))
        ax.barh(y, p["median_ms"], left=start, color=colours)
        ax.set_yticks(list(y), [_short(n) for n in p["layer"]], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("cumulative ms (top layers)")
        ax.set_title(f"{plan}: top {len(p)} layers", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in CLASS_COLOURS.values()]
    fig.legend(handles, list(CLASS_COLOURS), loc="lower center", ncol=len(CLASS_COLOURS), fontsize=7)
    fig.suptitle(f"Top layers as a waterfall — {case['model']} s{case['seq_len']}")
    fig.subplots_adjust(bottom=0.18, left=0.2, wspace=0.6)
    return fig


def _short(name: str, width: int = 38) -> str:
    name = str(name)
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _fig_seq_sweep(inp: _Inputs, plt: Any) -> Any:
    c = inp.comparison
    assert c is not None
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, col in zip(axes, ("attention_reduction", "e2e_reduction"), strict=True):
        if col in inp.card_ranges:
            lo, hi = inp.card_ranges[col]
            ax.axhspan(lo, hi, color="#2ca02c", alpha=0.15, label=f"card's claim {lo:.0%}–{hi:.0%}")
        for (plan, model), g in c.groupby(["precision", "model"]):
            g = g.sort_values("seq_len")
            ax.plot(g["seq_len"], g[col], marker="o", label=f"{model} {plan}")
            lo_col, hi_col = f"{col}_ci_low", f"{col}_ci_high"
            if lo_col in g and hi_col in g and g[lo_col].notna().any():
                ax.fill_between(g["seq_len"], g[lo_col], g[hi_col], alpha=0.15)
        ax.set_xscale("log", base=2)
        seqs = sorted(c["seq_len"].unique())
        ax.set_xticks(seqs, [str(x) for x in seqs])
        ax.set_xlabel("sequence length")
        ax.set_title(col.replace("_", " "))
        ax.axhline(0, color="black", lw=0.5)
    axes[0].set_ylabel("reduction vs baseline (positive = faster)")
    axes[1].legend(fontsize=7)
    fig.suptitle("INT8 reductions vs sequence length")
    return fig


def _fig_telemetry(inp: _Inputs, plt: Any) -> Any:
    t = inp.telemetry
    assert t is not None
    t = t[pd.to_numeric(t["value"], errors="coerce").notna()].copy()
    t["value"] = pd.to_numeric(t["value"])
    panels = [
        ("power (mW)", t["channel"].astype(str).str.startswith("power_")),
        ("GPU / EMC frequency (MHz)", t["channel"].isin(["gpu_freq", "emc_freq", "mem_freq"])),
        ("temperature (°C)", t["channel"].astype(str).str.startswith("temp_")),
    ]
    panels = [(label, mask) for label, mask in panels if mask.any()]
    if not panels:
        raise _Skip("telemetry has no power_*, gpu_freq/emc_freq or temp_* channels")
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.4 * len(panels)), sharex=True, squeeze=False)
    window = _timed_window(inp)
    for ax, (label, mask) in zip(axes[:, 0], panels, strict=True):
        for channel, g in t[mask].groupby("channel"):
            ax.plot(g["t_s"], g["value"], label=str(channel), lw=1)
        if window is not None:
            ax.axvspan(*window, color="#ffdd57", alpha=0.3, label="timed window")
        ax.set_ylabel(label, fontsize=8)
        ax.legend(fontsize=6, ncol=4)
    axes[-1, 0].set_xlabel("t (s)")
    note = "" if window is not None else " (timed window not recorded)"
    fig.suptitle("Telemetry timeline" + note)
    return fig


def _timed_window(inp: _Inputs) -> tuple[float, float] | None:
    s = inp.summary
    for lo, hi in (("window_start_s", "window_end_s"), ("telemetry_t_start_s", "telemetry_t_end_s")):
        if lo in s and hi in s and s[lo].notna().any():
            return float(s[lo].min()), float(s[hi].max())
    return None


class _Skip(Exception):
    """A figure decided it cannot be drawn from these results."""


FIGURES: list[tuple[str, str, Callable[..., Any], Callable[[_Inputs], str | None]]] = [
    (
        "class_bars",
        "Per-plan time by layer class, with end-to-end median and CI",
        _fig_class_bars,
        lambda i: _missing(
            i.summary,
            "summary",
            [
                "precision",
                "attention_ms",
                "ffn_ms",
                "other_ms",
                "e2e_median_ms",
                "e2e_median_ci_low_ms",
                "e2e_median_ci_high_ms",
            ],
        ),
    ),
    (
        "waterfall",
        "Top layers (waterfall), baseline and INT8 side by side",
        _fig_waterfall,
        lambda i: _missing(i.layers, "layers", ["layer", "layer_class", "precision", "median_ms", "seq_len"]),
    ),
    (
        "seq_sweep",
        "Reductions vs sequence length, card's claimed ranges shaded",
        _fig_seq_sweep,
        lambda i: (
            _missing(i.comparison, "comparison", ["seq_len", "precision", "attention_reduction", "e2e_reduction"])
            or (
                None
                if i.comparison is not None and i.comparison["seq_len"].nunique() > 1
                else "only one sequence length in comparison (no sweep)"
            )
        ),
    ),
    (
        "telemetry",
        "Telemetry timeline (power, GPU/EMC frequency, temperature)",
        _fig_telemetry,
        lambda i: _missing(i.telemetry, "telemetry", ["t_s", "channel", "value"]),
    ),
]


def _trust_rows(inp: _Inputs) -> list[dict[str, str]]:
    s = inp.summary
    rows = []
    for _, r in s.iterrows():
        flags = r.get("trust_flags")
        text = "" if flags is None or (isinstance(flags, float) and math.isnan(flags)) else str(flags)
        rows.append(
            {
                "run": str(r.get("run_id", "")),
                "case": f"{r.get('model', '')} {r.get('precision', '')} b{r.get('batch', '')} s{r.get('seq_len', '')}",
                "flags": text or "none",
            }
        )
    return rows


def _fingerprint(inp: _Inputs) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for run in inp.runs[:4]:
        items.append(("run", str(run.get("run_id", "?"))))
        for section in ("fingerprint", "host"):
            for k, v in dict(run.get(section, {})).items():
                items.append((f"{section}.{k}", json.dumps(v) if isinstance(v, (dict, list)) else str(v)))
        versions = dict(run.get("versions", {}))
        if versions:
            items.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    if not items:
        s = inp.summary.iloc[0]
        items = [("device", str(s.get("device", "?"))), ("device_kind", str(s.get("device_kind", "?")))]
    return items


def build_report(
    sources: Sequence[Path],
    out_dir: Path,
    force: bool = False,
    top_n: int = 15,
    title: str = "orinprof report",
    verdicts: Path | None = None,
    claims_file: Path | None = DEFAULT_CLAIMS,
) -> Report:
    """Write ``report.html``, one PNG per figure and the CSVs used into ``out_dir``.

    ``out_dir`` must be new or empty unless ``force`` (never silently overwrites).  Card 9's claimed
    ranges come from ``claims_file`` (their one owner); without it the sweep figure is not shaded.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OrinprofError(f"{out_dir} is a file", "pass a directory to --out")
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise OrinprofError(f"{out_dir} exists and is not empty", "choose a new --out directory or pass --force")
    try:
        import jinja2
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise MissingDependency(err.name or "matplotlib", "report", "to draw reports") from err

    inp = _read(sources)
    if verdicts is not None:  # a verdicts table from `orinprof cards validate --out FILE`
        extra = _optional([Path(verdicts).parent], Path(verdicts).name)
        if extra is None:
            raise OrinprofError(f"{verdicts} does not exist", "pass the CSV written by `orinprof cards validate --out`")
        inp.verdicts = extra if inp.verdicts is None else pd.concat([inp.verdicts, extra], ignore_index=True)
    lacking = _missing(inp.summary, "summary", ["model", "backend", "batch", "seq_len", "precision"])
    if lacking:
        raise OrinprofError(f"cannot build a report: {lacking}", "pass run directories written by `orinprof profile`")
    skipped: list[str] = []
    if claims_file is not None and Path(claims_file).is_file():
        from orinprof.cards.verdicts import card9_ranges

        inp.card_ranges = card9_ranges(Path(claims_file))
    else:
        skipped.append(f"card ranges: not shaded ({claims_file or 'no claims file'} not found)")
    out_dir.mkdir(parents=True, exist_ok=True)

    figures: list[Figure] = []
    embedded: list[dict[str, str]] = []
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 110, "font.size": 9})
    for key, fig_title, draw, needs in FIGURES:
        why = needs(inp)
        fig = None
        if why is None:
            try:
                fig = draw(inp, plt, top_n) if key == "waterfall" else draw(inp, plt)
            except _Skip as skip:
                why = str(skip)
        if fig is None:
            msg = f"{fig_title}: skipped ({why})"
            log.info("report: %s", msg)
            skipped.append(msg)
            figures.append(Figure(key, fig_title, None, str(why)))
            continue
        png = out_dir / f"{key}.png"
        fig.savefig(png, bbox_inches="tight")
        plt.close(fig)
        figures.append(Figure(key, fig_title, png.name))
        embedded.append({"title": fig_title, "data": base64.b64encode(png.read_bytes()).decode("ascii")})

    tables: list[Path] = []
    for name, df in (
        ("summary.csv", inp.summary),
        ("layers.csv", inp.layers),
        ("comparison.csv", inp.comparison),
        ("telemetry.csv", inp.telemetry),
        ("verdicts.csv", inp.verdicts),
    ):
        if df is not None:
            path = out_dir / name
            df.to_csv(path, index=False, float_format="%.6g")
            tables.append(path)

    verdict_rows = None
    if inp.verdicts is not None:
        cols = [
            c
            for c in (
                "claim_id",
                "card",
                "metric",
                "measured",
                "ci_low",
                "ci_high",
                "claimed_low",
                "claimed_high",
                "verdict",
                "reason",
            )
            if c in inp.verdicts.columns
        ]
        verdict_rows = inp.verdicts[cols].to_dict("records")
    summary_cols = [
        c
        for c in (
            "model",
            "backend",
            "precision",
            "batch",
            "seq_len",
            "device",
            "e2e_median_ms",
            "e2e_median_ci_low_ms",
            "e2e_median_ci_high_ms",
            "attention_ms",
            "ffn_ms",
            "other_ms",
        )
        if c in inp.summary.columns
    ]

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files("orinprof") / "report_templates")),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    html = env.get_template("report.html.j2").render(
        title=title,
        fingerprint=_fingerprint(inp),
        trust=_trust_rows(inp),
        figures=embedded,
        skipped=skipped,
        verdicts=verdict_rows,
        summary_cols=summary_cols,
        summary=inp.summary[summary_cols].to_dict("records"),
        tables=[p.name for p in tables],
        fmt=_fmt,
    )
    html_path = out_dir / "report.html"
    html_path.write_text(html, encoding="utf-8")
    return Report(out_dir, html_path, tuple(figures), tuple(tables), tuple(skipped))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:.4g}"
    return str(value)
