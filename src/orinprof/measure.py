"""Measurement: the one function that runs the whole pipeline for ``orinprof profile``.

For every sequence length and plan: export (cached) → classify → apply the plan (cached) → on the
chosen backend, a **timing run** (warm-up, then every latency kept, telemetry sampling beside it)
and a separate **profiling run** (per-layer times) → attribution → fidelity against fp32 → one
summary row.  Each plan's rows are appended to the run directory as soon as they exist, so an
interrupted or failing run keeps what it measured.  Then :func:`orinprof.compare.compare`.
"""

from __future__ import annotations

import logging
import platform
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from orinprof import attribute, classify, export, models, quantize, results, stats, telemetry
from orinprof.backends import make_runner
from orinprof.backends.base import Progress, Runner, RunnerOptions, TimingConfig
from orinprof.compare import compare
from orinprof.errors import OrinprofError
from orinprof.identity import package_versions

log = logging.getLogger(__name__)

#: backends that run the ONNX files (export + plans); ``torch`` runs the zoo's modules directly
ONNX_BACKENDS = ("onnxruntime", "tensorrt", "trtexec")


@dataclass(frozen=True)
class ProfileConfig:
    model: str | None = None  # preset name
    onnx: Path | None = None  # or a user ONNX file
    precisions: tuple[str, ...] = ("fp32", "int8-attn", "int8-ffn", "int8-all")
    seq_lens: tuple[int, ...] = ()
    batch: int = 1
    opset: int = export.DEFAULT_OPSET
    backend: str = "onnxruntime"
    device: str = "cpu"
    threads: int | None = None
    timing: TimingConfig = field(default_factory=TimingConfig)
    calib_batches: int = 16
    calib_method: str = "minmax"
    qdq_style: str = "trt"
    roofline_device: str | None = None  # e.g. local-cpu, h100, agx-orin-64gb: per-layer efficiency
    inputs_npz: Path | None = None
    fidelity_samples: int = 4
    telemetry: str = "auto"
    telemetry_interval_s: float = 0.1
    cuda_graph: bool = False
    results_dir: Path = Path("results")
    models_dir: Path = Path("models")
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    command: str = ""


class Reporter:
    """Progress sink; the CLI subclasses it with rich progress bars.  The library never prints."""

    def stage(self, message: str) -> None:
        log.info("%s", message)

    def progress(self, label: str) -> Progress | None:
        return None

    def done(self, label: str) -> None:
        pass


@dataclass(frozen=True)
class ProfileResult:
    run_dir: Path
    summary: pd.DataFrame
    comparison: pd.DataFrame
    failures: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- helpers


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    denom = np.linalg.norm(x) * np.linalg.norm(y)
    return float(np.dot(x, y) / denom) if denom > 0 else float("nan")


def _first_output(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return next(iter(outputs.values()))


def _check_config(cfg: ProfileConfig) -> tuple[models.ModelSpec | None, list[quantize.QuantPlan]]:
    if (cfg.model is None) == (cfg.onnx is None):
        raise OrinprofError("give exactly one of --model PRESET or --onnx PATH", "e.g. --model bert-base")
    plans = [quantize.get_plan(p) for p in cfg.precisions]
    if not plans:
        raise OrinprofError("no precision plans given", "e.g. --precisions fp32,int8-attn")
    spec = models.get(cfg.model) if cfg.model else None
    if cfg.backend not in ONNX_BACKENDS and cfg.backend != "torch":
        from orinprof.backends import BACKENDS

        raise OrinprofError(f"unknown backend {cfg.backend!r}", "choose one of: " + ", ".join(BACKENDS))
    if cfg.backend == "torch" and spec is None:
        raise OrinprofError("the torch backend runs zoo presets only", "use --model PRESET, or --backend onnxruntime")
    if spec is not None:
        for s in cfg.seq_lens or (spec.default_seq,):
            spec.check_shape(cfg.batch, s)
    if cfg.onnx is not None:
        export.load_onnx(cfg.onnx)  # fail early on a missing / non-ONNX file
    if cfg.inputs_npz is not None and not Path(cfg.inputs_npz).exists():
        raise OrinprofError(f"{cfg.inputs_npz} does not exist", "check the path given to --inputs")
    if cfg.timing.iterations < 1:
        raise OrinprofError("iterations must be at least 1")
    return spec, plans


def _samples(
    exported_inputs: Sequence[models.InputSpec], cfg: ProfileConfig
) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]], quantize.CalibrationSource, str]:
    """(timing feed, held-out fidelity feeds, calibration source, calibration id)."""
    inputs = tuple(exported_inputs)
    if cfg.inputs_npz is not None:
        user = export.load_npz(cfg.inputs_npz, inputs)
        calib = user[: max(1, len(user) - 1)] if len(user) > 1 else user
        held = user[len(calib) :] or user[:1]

        def source() -> Any:
            yield from calib

        digest = export.sha256_file(Path(cfg.inputs_npz))[:12]
        return user[0], held, source, f"npz:{digest}"
    rng_time = np.random.default_rng(cfg.seed)
    rng_held = np.random.default_rng(cfg.seed + 2)
    feed = export.synthesize(inputs, rng_time)
    held = [export.synthesize(inputs, rng_held) for _ in range(cfg.fidelity_samples)]
    # calibration uses seed+1: never the timing or the held-out inputs
    source = quantize.synthetic_calibration(inputs, cfg.calib_batches, seed=cfg.seed + 1)
    return feed, held, source, f"synthetic:{cfg.calib_batches}:{cfg.seed + 1}"


def _runner_options(cfg: ProfileConfig, plan: str, seq_len: int, spec: models.ModelSpec | None) -> RunnerOptions:
    extra = {
        "precision": plan,
        "batch": cfg.batch,
        "seq_len": seq_len,
        "preset": spec.name if spec else None,
        "spec": spec,
        "engine_dir": str(Path(cfg.models_dir).parent / "engines") if cfg.backend == "tensorrt" else None,
        **cfg.extra,
    }
    return RunnerOptions(
        device=cfg.device,
        threads=cfg.threads,
        cuda_graph=cfg.cuda_graph,
        extra={k: v for k, v in extra.items()},
    )


# ----------------------------------------------------------------------------- the pipeline


def profile(cfg: ProfileConfig, reporter: Reporter | None = None) -> ProfileResult:
    """Run every plan at every sequence length; write a new run directory; return its tables."""
    reporter = reporter or Reporter()
    spec, plans = _check_config(cfg)
    seq_lens = list(cfg.seq_lens) or ([spec.default_seq] if spec else [0])
    model_name = spec.name if spec else Path(cfg.onnx or "model").stem
    run_id = results.new_run_id(model_name, cfg.backend)
    run_dir = results.create_run_dir(Path(cfg.results_dir), run_id)
    wrote_rows = False
    failures: list[str] = []
    fingerprint: dict[str, Any] = {}
    try:
        try:
            fingerprint = telemetry.fingerprint()
        except Exception as err:  # the fingerprint is best-effort context, never a reason to fail
            log.warning("fingerprint incomplete: %s", err)
        info = results.RunInfo(
            run_id=run_id,
            created_utc=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            command=cfg.command or " ".join(sys.argv),
            config=_config_dict(cfg),
            versions=package_versions(),
            host={"platform": platform.platform(), "cpu": _cpu(), "cpu_count": _cpu_count()},
            fingerprint=fingerprint,
        )
        results.write_run_info(info, run_dir)
        for seq in seq_lens:
            for plan in plans:
                label = f"{model_name} · seq {seq} · {plan.name}"
                try:
                    row = _profile_one(cfg, spec, plan, seq, run_id, run_dir, reporter, label)
                except OrinprofError as err:
                    if not wrote_rows and plan is plans[0] and seq == seq_lens[0]:
                        raise  # the very first plan failed: nothing to keep, report the cause
                    failures.append(f"{label}: {err.one_line()}")
                    log.error("%s failed: %s", label, err.one_line())
                    continue
                wrote_rows = True
                reporter.done(f"{label}: median {row['e2e_median_ms']:.3f} ms")
    except BaseException:
        if not wrote_rows:
            shutil.rmtree(run_dir, ignore_errors=True)  # an empty run directory helps nobody
        raise
    summary = results.read_table(run_dir, "summary")
    comparison = compare(summary, results.read_table(run_dir, "class_times"), results.read_table(run_dir, "latencies"))
    if len(comparison):
        results.write_table(comparison, run_dir, "comparison")
    if failures:
        info_path = run_dir / "failures.txt"
        info_path.write_text("\n".join(failures) + "\n")
    return ProfileResult(run_dir, summary, comparison, tuple(failures))


def prepare(cfg: ProfileConfig, reporter: Reporter | None = None) -> list[tuple[int, quantize.PlannedModel]]:
    """Export, classify and write every plan's ONNX without measuring (``orinprof export``): the
    host-side half of the Jetson workflow, for a device without torch."""
    reporter = reporter or Reporter()
    spec, plans = _check_config(cfg)
    out = []
    for seq in list(cfg.seq_lens) or ([spec.default_seq] if spec else [0]):
        exported, classes = _exported(cfg, spec, seq)
        _feed, _held, calib, calib_id = _samples(exported.inputs, cfg)
        for plan in plans:
            reporter.stage(f"{exported.model} · seq {exported.seq_len} · {plan.name}")
            out.append(
                (
                    exported.seq_len,
                    quantize.apply_plan(exported, plan, classes, calib, calib_id, cfg.calib_method, cfg.qdq_style),
                )
            )
    return out


def _cpu() -> str:
    from orinprof.identity import cpu_model

    return cpu_model()


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 0


def _config_dict(cfg: ProfileConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["timing"] = asdict(cfg.timing)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


_EXPORT_CACHE: dict[tuple[Any, ...], tuple[export.ExportedModel, pd.DataFrame]] = {}


def _exported(cfg: ProfileConfig, spec: models.ModelSpec | None, seq: int) -> tuple[export.ExportedModel, pd.DataFrame]:
    key = (spec.name if spec else str(cfg.onnx), cfg.batch, seq, cfg.opset, str(cfg.models_dir), cfg.seed)
    if key not in _EXPORT_CACHE:
        if spec is not None:
            exported = export.export_preset(spec, cfg.batch, seq, cfg.opset, Path(cfg.models_dir), cfg.seed)
        else:
            exported = export.from_onnx(Path(cfg.onnx or ""), cfg.batch, seq or None)
        classes = classify.classify_file(exported.path)
        summary = classify.summarize(classes)
        if summary["attention_cores"] == 0:
            log.warning(
                "%s has no attention (no Softmax between two activation MatMuls): its attention share will be 0",
                exported.model,
            )
        _EXPORT_CACHE[key] = (exported, classes)
    return _EXPORT_CACHE[key]


_REFERENCE_CACHE: dict[tuple[Any, ...], list[np.ndarray]] = {}


def _reference_outputs(
    cfg: ProfileConfig,
    exported: export.ExportedModel | None,
    spec: models.ModelSpec | None,
    seq: int,
    held: list,
) -> list[np.ndarray] | None:
    """fp32 outputs on the held-out inputs: ONNX Runtime on CPU for ONNX backends, the torch
    module in fp32 for the torch backend.  ``None`` when no reference runner is available."""
    key = (cfg.backend, exported.sha256 if exported else spec.name if spec else "", seq, cfg.seed)
    if key in _REFERENCE_CACHE:
        return _REFERENCE_CACHE[key]
    try:
        if cfg.backend == "torch":
            options = _runner_options(replace(cfg, device=cfg.device), "fp32", seq, spec)
            runner: Runner = make_runner("torch", Path("."), options)
        else:
            assert exported is not None
            runner = make_runner("onnxruntime", exported.path, RunnerOptions(device="cpu", threads=cfg.threads))
        with runner:
            outs = [_first_output(runner.infer(f)).astype(np.float32) for f in held]
    except OrinprofError as err:
        log.warning("no fp32 reference for the fidelity check: %s", err.one_line())
        return None
    _REFERENCE_CACHE[key] = outs
    return outs


def _profile_one(
    cfg: ProfileConfig,
    spec: models.ModelSpec | None,
    plan: quantize.QuantPlan,
    seq: int,
    run_id: str,
    run_dir: Path,
    reporter: Reporter,
    label: str,
) -> dict[str, Any]:
    keys: dict[str, Any] = {
        "run_id": run_id,
        "model": spec.name if spec else Path(cfg.onnx or "").stem,
        "backend": cfg.backend,
    }
    exported: export.ExportedModel | None = None
    classes: pd.DataFrame | None = None
    gemm_counts: dict[str, int] = {}
    lint: pd.DataFrame | None = None
    model_path = Path(".")
    if cfg.backend in ONNX_BACKENDS:
        reporter.stage(f"{label}: export and {plan.name} plan")
        exported, classes = _exported(cfg, spec, seq)
        seq = exported.seq_len or seq
        feed, held, calib, calib_id = _samples(exported.inputs, cfg)
        planned = quantize.apply_plan(exported, plan, classes, calib, calib_id, cfg.calib_method, cfg.qdq_style)
        gemm_counts = dict(planned.gemm_counts)
        model_path = planned.path
        if plan.is_int8:
            lint = _lint(planned.path)
        batch = exported.batch
    else:
        assert spec is not None
        feed, held, _calib, _cid = _samples(spec.inputs(cfg.batch, seq), cfg)
        batch = cfg.batch
    keys.update(precision=plan.name, batch=batch, seq_len=seq)

    runner = make_runner(cfg.backend, model_path, _runner_options(cfg, plan.name, seq, spec))
    with runner:
        binfo = runner.info()
        reporter.stage(f"{label}: timing on {binfo.device}")
        with telemetry.open_session(cfg.telemetry, cfg.telemetry_interval_s) as tel:
            t0 = telemetry.clock()
            latencies = runner.time_e2e(feed, cfg.timing, reporter.progress(f"{label} timing"))
            t1 = telemetry.clock()
        # energy per inference over the timed iterations only (the runner knows where warm-up ended)
        t0, t1 = runner.timed_window or (t0, t1)
        tel_summary = tel.summarize(t0, t1, len(latencies))
        tel_samples = tel.samples()
        reporter.stage(f"{label}: per-layer profiling run")
        raw = runner.profile_layers(feed, cfg.timing.profile_iterations, reporter.progress(f"{label} profiling"))
        # attribution: the classes of the graph the profiled names belong to (read it while the
        # runner still holds it: ONNX Runtime's optimised graph lives in the runner's temp dir)
        classes_for_profile: pd.DataFrame | None = None
        flops: dict[str, float] | None = None
        if "layer_class" not in raw.columns:
            graph_path = runner.attribution_graph() or model_path
            classes_for_profile = classify.classify(onnx.load(str(graph_path), load_external_data=False))
            flops = _node_flops(graph_path) if cfg.backend in ("tensorrt", "trtexec") else None
        fidelity = float("nan")
        if plan.name != "fp32" or cfg.backend != "onnxruntime":
            reference = _reference_outputs(cfg, exported, spec, seq, held)
            if reference is not None:
                outs = [_first_output(runner.infer(f)) for f in held]
                fidelity = float(np.mean([cosine(a, b) for a, b in zip(outs, reference)]))
        else:
            fidelity = 1.0  # the fp32 ONNX on ONNX Runtime CPU is the reference itself
        if "gemm_counts" in binfo.details:
            gemm_counts = dict(binfo.details["gemm_counts"])

    layers = attribute.attribute_layers(raw, classes_for_profile, flops)
    roofline: dict[str, Any] = {}
    if cfg.roofline_device and exported is not None:
        layers, roofline = _roofline(cfg, exported, plan.name, layers, latencies)
    totals = attribute.class_totals(layers)
    per_iter = attribute.class_times(raw, layers)

    lat = stats.latency_stats(latencies)
    row: dict[str, Any] = {
        **keys,
        "device": binfo.device,
        "device_kind": binfo.device_kind,
        "iterations": lat.n,
        "e2e_median_ms": lat.median_ms,
        "e2e_mean_ms": lat.mean_ms,
        "e2e_p90_ms": lat.p90_ms,
        "e2e_p95_ms": lat.p95_ms,
        "e2e_p99_ms": lat.p99_ms,
        "e2e_std_ms": lat.std_ms,
        "e2e_cv": lat.cv,
        "e2e_median_ci_low_ms": lat.median_ci_low_ms,
        "e2e_median_ci_high_ms": lat.median_ci_high_ms,
        **{k: totals[k] for k in ("attention_ms", "ffn_ms", "norm_ms", "embedding_ms", "other_ms", "unattributed_ms")},
        "attention_share": totals["attention_share"],
        "ffn_share": totals["ffn_share"],
        "layer_sum_ms": totals["layer_sum_ms"],
        "layer_sum_over_e2e": totals["layer_sum_ms"] / lat.median_ms if lat.median_ms > 0 else float("nan"),
        "gemms_total": gemm_counts.get("gemms_total", 0),
        "gemms_int8_attention": gemm_counts.get("gemms_int8_attention", 0),
        "gemms_int8_ffn": gemm_counts.get("gemms_int8_ffn", 0),
        "gemms_int8_other": gemm_counts.get("gemms_int8_other", 0),
        "fidelity_cosine": fidelity,
        "threads": binfo.details.get("threads"),
        "telemetry_source": tel.source,
        "trust_flags": tel_summary.get("trust_flags") or None,
        "backend_versions": ";".join(f"{k}={v}" for k, v in binfo.versions.items()),
        # the timed window on the telemetry clock (``t_s`` of telemetry.csv): reports shade it
        "window_start_s": t0,
        "window_end_s": t1,
        "cuda_graph": bool(cfg.cuda_graph),
    }
    for k, v in tel_summary.items():
        if k not in row:
            row[k] = v
    row.update(roofline)
    if lint is not None and len(lint):
        cores = lint.drop_duplicates(["block", "core"])
        row["int8_mha_fusable_cores"] = f"{int((cores['verdict'] == 'fusable').sum())}/{len(cores)}"
    row.update(_engine_facts(binfo.details))

    # write this plan's rows now: an interruption later keeps them
    results.append_table(pd.DataFrame([row]), run_dir, "summary")
    results.append_table(
        pd.DataFrame({**keys, "iteration": np.arange(len(latencies)), "latency_ms": latencies}),
        run_dir,
        "latencies",
    )
    layer_rows = layers.assign(**keys)
    results.append_table(layer_rows, run_dir, "layers")
    results.append_table(per_iter.assign(**keys), run_dir, "class_times")
    if lint is not None and len(lint):
        results.append_table(lint.assign(**keys), run_dir, "qdq_lint")
    if len(tel_samples):
        samples = tel_samples.assign(run_id=run_id, precision=plan.name, seq_len=seq)
        results.append_table(samples, run_dir, "telemetry")
    return row


def _roofline(
    cfg: ProfileConfig, exported: export.ExportedModel, plan: str, layers: pd.DataFrame, latencies: np.ndarray
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Each layer's roofline floor on ``cfg.roofline_device`` and measured efficiency (floor ÷
    median), and the model-level figure: the sum of the floors ÷ the end-to-end median."""
    from orinprof import devices, roofline

    try:
        device = devices.get_device(cfg.roofline_device or "", results_dir=Path(cfg.results_dir))
        nodes = roofline.project(exported.path, device, [plan] if plan.startswith("int8") else [])
    except OrinprofError as err:
        log.warning("roofline skipped: %s", err.one_line())
        return layers, {}
    nodes = nodes[nodes["plan"] == (plan if plan.startswith("int8") else device.baseline)].assign(plan=plan)
    floors = roofline.layer_floors(layers.assign(precision=plan), nodes).drop(columns=["precision"])
    floor_ms = float(nodes["floor_ms"].sum())
    median = float(np.median(latencies))
    return floors, {
        "roofline_device": cfg.roofline_device,
        "roofline_floor_ms": floor_ms,
        "roofline_efficiency": floor_ms / median if median > 0 else float("nan"),
    }


def _engine_facts(details: Mapping[str, Any]) -> dict[str, Any]:
    """Summary columns from a TensorRT engine's facts: did it pick fused attention, in which precision,
    and how many layers ran in INT8 (absent for backends without an engine)."""
    out: dict[str, Any] = {}
    if "layer_count" in details:
        out["engine_layers"] = details["layer_count"]
    if "fused_mha" in details:
        out["fused_mha"] = bool(details["fused_mha"])
        out["fused_mha_precision"] = ";".join(str(p) for p in details.get("fused_mha_precisions", [])) or None
    counts = details.get("precision_counts")
    if isinstance(counts, Mapping):
        out["int8_layers"] = int(sum(v for k, v in counts.items() if "int8" in str(k).lower()))
    return out


def _lint(path: Path) -> pd.DataFrame | None:
    """TensorRT INT8 fused-attention preconditions of the plan's Q/DQ layout (``orinprof lint-qdq``)."""
    from orinprof.lint import lint_qdq

    try:
        return lint_qdq(path)
    except OrinprofError as err:  # the lint informs; it never stops a measurement
        log.warning("Q/DQ lint skipped for %s: %s", path.name, err.one_line())
        return None


def _node_flops(path: Path) -> dict[str, float] | None:
    try:
        from orinprof.costs import node_costs

        costs = node_costs(onnx.load(str(path), load_external_data=False))
        return dict(zip(costs["node"], costs["flops"].astype(float)))
    except Exception as err:  # FLOPs only refine mixed-layer splits; attribution works without
        log.warning("no FLOPs for mixed-layer splits (%s); splitting by node count", err)
        return None


def parse_seq_lens(text: str) -> tuple[int, ...]:
    """``128,384`` or ``64..512`` (powers of two in the range) or a mix."""
    out: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            if ".." in part:
                lo, hi = (int(x) for x in part.split(".."))
                v = lo
                while v <= hi:
                    out.append(v)
                    v *= 2
            else:
                out.append(int(part))
        except ValueError as err:
            raise OrinprofError(f"bad sequence length {part!r}", "use e.g. --seq 128,384 or --seq 64..512") from err
    if any(v < 1 for v in out):
        raise OrinprofError("sequence lengths must be positive", "use e.g. --seq 128")
    return tuple(out)
