"""Measurement: the pipeline behind ``orinprof profile``, in three steps per shape.

1. **Prepare** (:meth:`ProfileRun.prepare_shape`, :meth:`ProfileRun.prepare_plans`): export the model
   once and analyse it once (:class:`orinprof.analysed.AnalysedModel`); per plan, write the plan's
   ONNX (:func:`orinprof.quantize.apply_plan`) and derive its analysed model (the class map is
   inherited from the source, never re-derived on a rewritten graph).
2. **Measure** (:meth:`ProfileRun.measure`): one runner per plan, activated once and kept alive.
   The plans are timed in ``rounds`` rounds; in each round every plan runs one timing block, in a
   freshly shuffled (seeded, recorded) order, then one profiling block, shuffled again.  Drift and
   neighbours' noise hit every plan alike, and each round pairs every plan with the baseline
   measured minutes, not a whole run, apart.  With ``aa_control`` the baseline is timed twice, as
   two plans (``fp32`` and ``fp32~aa``): the spurious difference between them is the run's noise
   floor.
3. **Record** (:meth:`ProfileRun.record`): one summary row per plan (:func:`orinprof.results.summary_row`),
   latencies and blocks (appended round by round, so an interrupted run keeps them), layers,
   class times, Q/DQ lint, telemetry.  ``run.json`` says whether the run is running, complete,
   interrupted or failed, and which plans are done.

Backends are told apart by the capabilities they declare (:class:`orinprof.backends.base.Runner`:
``consumes``, ``returns_outputs``, ``engine_layers``), never by name: a backend added to
:data:`orinprof.backends.BACKENDS` is accepted here as it is.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from orinprof import attribute, export, models, quantize, results, telemetry
from orinprof.analysed import AnalysedModel
from orinprof.backends import BACKENDS, make_runner, runner_class
from orinprof.backends.base import BackendInfo, Feed, Progress, Runner, RunnerOptions, TimingConfig
from orinprof.compare import AA_SUFFIX, compare, default_baseline, noise_floors
from orinprof.errors import OrinprofError
from orinprof.plans import Plan, get_plan

log = logging.getLogger(__name__)

#: the fp32 reference of the fidelity check for runners that consume ONNX: ONNX Runtime on the CPU
#: (runners that consume the zoo's modules are their own reference, at fp32)
ONNX_REFERENCE_BACKEND = "onnxruntime"
#: ``--isolate`` choices: ``none`` keeps every runner alive in this process across rounds
ISOLATION_MODES = ("none", "process")


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
    #: how INT8 plans are implemented (quantize.INT8_RECIPES); auto = the backend's fastest
    int8_recipe: str = "auto"
    #: the older --qdq-style (trt | ort), an alias of --int8-recipe trt-qdq | ort-qdq; None = not given
    qdq_style: str | None = None
    roofline_device: str | None = None  # e.g. local-cpu, h100, agx-orin-64gb: per-layer efficiency
    inputs_npz: Path | None = None
    fidelity_samples: int = 4
    telemetry: str = "auto"
    telemetry_interval_s: float = 0.1
    cuda_graph: bool = False
    results_dir: Path = Path("results")
    models_dir: Path = Path("models")
    seed: int = 0
    #: time the baseline twice, as two plans, and report their spurious difference (the noise floor)
    aa_control: bool = False
    #: ``none`` (runners stay loaded across rounds) or ``process`` (each block in a fresh process;
    #: what persists is on disk: engine and compile caches)
    isolate: str = "none"
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

    def expect(self, plans: int, blocks: int) -> None:
        """The run's totals once its plans are known: ``plans`` (over all shapes) and ``blocks``
        (timing and profiling blocks over all rounds), for a time-left estimate."""


@dataclass(frozen=True)
class ProfileResult:
    run_dir: Path
    summary: pd.DataFrame
    comparison: pd.DataFrame
    failures: tuple[str, ...] = ()
    #: seq_len → the A/A control's noise floor (fraction; ``--aa-control`` only)
    noise_floor: Mapping[int, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------- small helpers


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    denom = np.linalg.norm(x) * np.linalg.norm(y)
    return float(np.dot(x, y) / denom) if denom > 0 else float("nan")


def _first_output(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return next(iter(outputs.values()))


def _check_config(cfg: ProfileConfig) -> tuple[models.ModelSpec | None, list[Plan], type[Runner]]:
    if (cfg.model is None) == (cfg.onnx is None):
        raise OrinprofError("give exactly one of --model PRESET or --onnx PATH", "e.g. --model bert-base")
    plans = [get_plan(p) for p in cfg.precisions]
    if not plans:
        raise OrinprofError("no precision plans given", "e.g. --precisions fp32,int8-attn")
    if len({p.name for p in plans}) != len(plans):
        raise OrinprofError("a plan is listed twice", "list each plan once (--aa-control times the baseline twice)")
    spec = models.get(cfg.model) if cfg.model else None
    cls = runner_class(cfg.backend)  # any registered backend; unknown names fail here with the list
    if cls.consumes == "zoo" and spec is None:
        raise OrinprofError(
            f"the {cfg.backend} backend runs zoo presets only", "use --model PRESET, or a backend that runs ONNX"
        )
    if cfg.isolate not in ISOLATION_MODES:
        raise OrinprofError(f"unknown isolation {cfg.isolate!r}", "choose one of: " + ", ".join(ISOLATION_MODES))
    if spec is not None:
        for s in cfg.seq_lens or (spec.default_seq,):
            spec.check_shape(cfg.batch, s)
    if cfg.onnx is not None:
        export.load_onnx(cfg.onnx)  # fail early on a missing / non-ONNX file
    if cfg.inputs_npz is not None and not Path(cfg.inputs_npz).exists():
        raise OrinprofError(f"{cfg.inputs_npz} does not exist", "check the path given to --inputs")
    if cfg.timing.iterations < 1:
        raise OrinprofError("iterations must be at least 1")
    return spec, plans, cls


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


def run_mode(cfg: ProfileConfig) -> str:
    """How the plans ran, as one comparable string (``compare`` never mixes modes)."""
    parts = [f"device={cfg.device}", f"threads={cfg.threads or 'default'}", f"cuda_graph={bool(cfg.cuda_graph)}"]
    parts += [f"isolate={cfg.isolate}", f"int8_recipe={cfg.int8_recipe}"]
    parts += [f"{k}={v}" for k, v in sorted(cfg.extra.items())]
    return ",".join(parts)


def _config_dict(cfg: ProfileConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["timing"] = asdict(cfg.timing)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


# ----------------------------------------------------------------------------- prepared state


@dataclass
class Shape:
    """One model at one sequence length, prepared: the export and its analysed source model."""

    seq_len: int
    batch: int
    inputs: tuple[models.InputSpec, ...]
    feed: dict[str, np.ndarray]
    held: list[dict[str, np.ndarray]]
    calibration: quantize.CalibrationSource
    calibration_id: str
    exported: export.ExportedModel | None = None
    source: AnalysedModel | None = None


@dataclass
class PlanSlot:
    """One plan (or the A/A copy of the baseline) of one shape: what was prepared, the live runner,
    and what its blocks measured."""

    label: str
    plan: Plan
    model_path: Path
    model: AnalysedModel | None = None
    gemm_counts: dict[str, int] = field(default_factory=dict)
    lint: pd.DataFrame | None = None
    runner: Runner | None = None
    info: BackendInfo | None = None
    latencies: list[np.ndarray] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)
    telemetry: list[dict[str, Any]] = field(default_factory=list)
    profiles: list[pd.DataFrame] = field(default_factory=list)
    #: rounds whose profiling rows the runner hands over after the last round (``finish_profiling``)
    pending_profile_rounds: list[int] = field(default_factory=list)
    classes_for_profile: pd.DataFrame | None = None
    #: the INT8 recipe of the plan file (None for fp32/fp16 and for backends that do not say)
    int8_recipe: str | None = None
    #: integer kernels that executed per class (quantize.INT8_KERNEL_COLUMNS; None = unknown)
    int8_kernels: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(quantize.INT8_KERNEL_COLUMNS))
    fidelity: float = float("nan")
    fidelity_note: str | None = None
    failure: str | None = None

    @property
    def alive(self) -> bool:
        return self.failure is None


# ----------------------------------------------------------------------------- the run


class ProfileRun:
    """One ``orinprof profile`` run: its configuration, run directory and everything it holds
    between shapes (the reference outputs), instead of module-level caches."""

    def __init__(self, cfg: ProfileConfig, reporter: Reporter | None = None) -> None:
        self.cfg = cfg
        self.reporter = reporter or Reporter()
        self.spec, self.plans, self.runner_cls = _check_config(cfg)
        if self.runner_cls.consumes == "onnx":  # run.json and run_mode record the recipe that runs, not "auto"
            cfg = self.cfg = replace(cfg, int8_recipe=_int8_recipe(cfg, self.runner_cls), qdq_style=None)
        self.model_name = self.spec.name if self.spec else Path(cfg.onnx or "model").stem
        self.mode = run_mode(cfg)
        self.failures: list[str] = []
        self.run_id = ""
        self.run_dir = Path(".")
        self.info: results.RunInfo | None = None
        self.rows_written = False
        self._references: dict[int, list[np.ndarray] | None] = {}

    # ------------------------------------------------------------------ the whole run
    def run(self) -> ProfileResult:
        cfg = self.cfg
        seq_lens = list(cfg.seq_lens) or ([self.spec.default_seq] if self.spec else [0])
        self.run_dir = results.new_run_dir(Path(cfg.results_dir), self.model_name, cfg.backend)
        self.run_id = self.run_dir.name
        try:
            fingerprint: dict[str, Any] = {}
            try:
                fingerprint = telemetry.fingerprint()
            except Exception as err:  # the fingerprint is best-effort context, never a reason to fail
                log.warning("fingerprint incomplete: %s", err)
            self.info = results.RunInfo.create(
                self.run_id, cfg.command or " ".join(sys.argv), _config_dict(cfg), fingerprint
            )
            results.write_run_info(self.info, self.run_dir)
            for i, seq in enumerate(seq_lens):
                shape = self.prepare_shape(seq)
                slots = self.prepare_plans(shape)
                if i == 0:  # every shape runs the same plans: a timing and a profiling block per round
                    plans = len(slots) * len(seq_lens)
                    self.reporter.expect(plans, plans * cfg.timing.rounds * 2)
                samples = self.measure(shape, slots)
                done = self.record(shape, slots, samples)
                self.info = results.update_run_info(self.info, self.run_dir, plans_done=(*self.info.plans_done, *done))
            return self._finish()
        except KeyboardInterrupt:
            self._end("interrupted")
            raise
        except BaseException:
            self._end("failed")
            raise

    def _finish(self) -> ProfileResult:
        """The comparison of everything measured, the noise floor, and ``status: complete``."""
        summary = results.read_table(self.run_dir, "summary")
        comparison = compare(
            summary,
            results.read_table(self.run_dir, "class_times"),
            results.read_table(self.run_dir, "latencies"),
        )
        if len(comparison):
            results.write_table(comparison, self.run_dir, "comparison")
        floors = noise_floors(comparison)
        if self.failures:
            (self.run_dir / "failures.txt").write_text("\n".join(self.failures) + "\n")
        assert self.info is not None
        self.info = results.update_run_info(
            self.info, self.run_dir, status="complete", noise_floor={str(k): v for k, v in floors.items()}
        )
        return ProfileResult(self.run_dir, summary, comparison, tuple(self.failures), floors)

    def _end(self, status: str) -> None:
        if not self.rows_written:
            shutil.rmtree(self.run_dir, ignore_errors=True)  # an empty run directory helps nobody
        elif self.info is not None:
            self.info = results.update_run_info(self.info, self.run_dir, status=status)

    def _fail(self, slot: PlanSlot, label: str, err: OrinprofError) -> None:
        slot.failure = err.one_line()
        self.failures.append(f"{label}: {slot.failure}")
        log.error("%s failed: %s", label, slot.failure)
        if slot.runner is not None:
            with contextlib.suppress(Exception):
                slot.runner.deactivate()

    # ------------------------------------------------------------------ 1. prepare
    def prepare_shape(self, seq: int) -> Shape:
        """Export (or load) the model at this shape and analyse it once."""
        cfg, spec = self.cfg, self.spec
        if self.runner_cls.consumes == "zoo":
            assert spec is not None
            inputs = tuple(spec.inputs(cfg.batch, seq))
            feed, held, calib, calib_id = _samples(inputs, cfg)
            return Shape(seq, cfg.batch, inputs, feed, held, calib, calib_id)
        self.reporter.stage(f"{self.model_name} · seq {seq}: export and analyse")
        if spec is not None:
            exported = export.export_preset(spec, cfg.batch, seq, cfg.opset, Path(cfg.models_dir), cfg.seed)
        else:
            exported = export.from_onnx(Path(cfg.onnx or ""), cfg.batch, seq or None)
        source = AnalysedModel.load(exported.path)
        if not ((source.classes["role"] == "softmax") & (source.classes["layer_class"] == "attention")).any():
            log.warning(
                "%s has no attention (no Softmax between two activation MatMuls): its attention share will be 0",
                exported.model,
            )
        feed, held, calib, calib_id = _samples(exported.inputs, cfg)
        return Shape(
            exported.seq_len or seq,
            exported.batch,
            tuple(exported.inputs),
            feed,
            held,
            calib,
            calib_id,
            exported,
            source,
        )

    def prepare_plans(self, shape: Shape) -> list[PlanSlot]:
        """Each plan's model (ONNX consumers: the plan file and its derived analysis)."""
        slots: list[PlanSlot] = []
        for i, plan in enumerate(self.plans):
            label = f"{self.model_name} · seq {shape.seq_len} · {plan.name}"
            try:
                slots.append(self._prepare_plan(shape, plan))
            except OrinprofError as err:
                if i == 0 and not self.rows_written:
                    raise  # the very first plan failed: nothing to keep, report the cause
                self.failures.append(f"{label}: {err.one_line()}")
                log.error("%s failed: %s", label, err.one_line())
        return slots

    def _prepare_plan(self, shape: Shape, plan: Plan) -> PlanSlot:
        if shape.exported is None or shape.source is None:
            return PlanSlot(plan.name, plan, Path("."))
        self.reporter.stage(f"{self.model_name} · seq {shape.seq_len}: {plan.name} plan")
        cfg = self.cfg
        planned = quantize.apply_plan(
            shape.exported,
            plan,
            shape.source.classes,
            shape.calibration,
            shape.calibration_id,
            cfg.calib_method,
            recipe=cfg.int8_recipe,
            source=shape.source.proto,
        )
        model = (
            shape.source
            if Path(planned.path) == shape.source.path
            else shape.source.derive(planned.path, planned.proto)
        )
        # the lint checks TensorRT's Q/DQ preconditions: meaningful for the TensorRT layout only
        lint = _lint(model) if plan.is_int8 and planned.recipe == "trt-qdq" else None
        slot = PlanSlot(plan.name, plan, Path(planned.path), model, dict(planned.gemm_counts), lint)
        slot.int8_recipe = planned.recipe
        return slot

    def runner_options(self, plan_name: str, shape: Shape) -> RunnerOptions:
        cfg = self.cfg
        artifact_dir = Path(cfg.models_dir).parent / "engines"
        legacy = {
            "precision": plan_name,
            "batch": shape.batch,
            "seq_len": shape.seq_len,
            "preset": self.spec.name if self.spec else None,
            "spec": self.spec,
            **cfg.extra,
        }
        if self.runner_cls.engine_layers:
            legacy.setdefault("engine_dir", str(artifact_dir))
        return RunnerOptions(
            device=cfg.device,
            threads=cfg.threads,
            cuda_graph=cfg.cuda_graph,
            plan=plan_name,
            batch=shape.batch,
            seq_len=shape.seq_len,
            spec=self.spec,
            input_shapes={i.name: tuple(i.shape) for i in shape.inputs},
            artifact_dir=artifact_dir,
            extra=legacy,
        )

    # ------------------------------------------------------------------ 2. measure
    def measure(self, shape: Shape, slots: list[PlanSlot]) -> pd.DataFrame:
        """Activate every plan's runner once, then run the interleaved rounds."""
        cfg = self.cfg
        timing = cfg.timing
        with contextlib.ExitStack() as stack:
            for slot in slots:
                self._activate(slot, shape, stack, first=slot is slots[0] and len(slots) == 1)
            if cfg.aa_control:
                self._add_aa_control(shape, slots, stack)
            if not any(s.alive for s in slots):
                raise OrinprofError(f"no plan could start on {cfg.backend}", "; ".join(self.failures[-len(slots) :]))
            rng = np.random.default_rng([cfg.seed, shape.seq_len])
            tel = stack.enter_context(telemetry.open_session(cfg.telemetry, cfg.telemetry_interval_s))
            for r in range(timing.rounds):
                self._round(shape, slots, r, rng, tel)
            for slot in slots:
                if slot.alive:
                    self._finish_slot(slot, shape)
            return tel.samples()

    def _round(self, shape: Shape, slots: list[PlanSlot], r: int, rng: np.random.Generator, tel: Any) -> None:
        """Round ``r``: every live plan's timing block in a fresh shuffled order, then every plan's
        profiling block, shuffled again; the round's latencies and schedule are written at once."""
        timing = self.cfg.timing
        blocks: list[dict[str, Any]] = []
        lat_rows: list[pd.DataFrame] = []
        order = [slots[i] for i in rng.permutation(len(slots))]
        for pos, slot in enumerate(order):
            if not slot.alive:
                continue
            self.reporter.stage(f"seq {shape.seq_len} · round {r + 1}/{timing.rounds}: timing {slot.label}")
            try:
                lat, window = self._timing_block(slot, shape, r, tel)
            except OrinprofError as err:
                self._fail(slot, f"{self.model_name} · seq {shape.seq_len} · {slot.label}", err)
                continue
            blocks.append(self._block_row(shape, slot, r, "timing", pos, len(lat), window, float(np.median(lat))))
            lat_rows.append(
                pd.DataFrame(
                    {**self._keys(shape, slot), "round": r, "iteration": np.arange(len(lat)), "latency_ms": lat}
                )
            )
        order = [slots[i] for i in rng.permutation(len(slots))]
        for pos, slot in enumerate(order):
            if not slot.alive:
                continue
            self.reporter.stage(f"seq {shape.seq_len} · round {r + 1}/{timing.rounds}: profiling {slot.label}")
            try:
                raw, window = self._profiling_block(slot, shape, r)
            except OrinprofError as err:
                self._fail(slot, f"{self.model_name} · seq {shape.seq_len} · {slot.label}", err)
                continue
            if raw is None:  # rows after the last round: the block's median is in class_times.csv then
                n, med = timing.profile_iterations, float("nan")
            else:
                per_iter = raw.groupby("iteration")["time_ms"].sum()
                n, med = len(per_iter), float(per_iter.median()) if len(per_iter) else float("nan")
            blocks.append(self._block_row(shape, slot, r, "profiling", pos, n, window, med))
        # this round's latencies and schedule now: an interruption later keeps them
        if lat_rows:
            results.append_table(pd.concat(lat_rows, ignore_index=True), self.run_dir, "latencies")
            self.rows_written = True
        if blocks:
            results.append_table(pd.DataFrame(blocks), self.run_dir, "blocks")

    def _activate(self, slot: PlanSlot, shape: Shape, stack: contextlib.ExitStack, first: bool = False) -> None:
        try:
            runner = self._make_runner(slot, shape)
            runner.activate()
            stack.callback(runner.deactivate)
            slot.runner = runner
            slot.info = runner.info()
        except OrinprofError as err:
            if first and not self.rows_written:
                raise
            self._fail(slot, f"{self.model_name} · seq {shape.seq_len} · {slot.label}", err)

    def _add_aa_control(self, shape: Shape, slots: list[PlanSlot], stack: contextlib.ExitStack) -> None:
        """A second, independent runner of the baseline plan (fp32 on CPUs, fp16 on GPUs: known once
        a runner says what device it is on), timed as a plan of its own."""
        alive = [s for s in slots if s.alive and s.info is not None]
        if not alive:
            return
        assert alive[0].info is not None
        name = default_baseline(alive[0].info.device_kind)
        base = next((s for s in alive if s.label == name), None)
        if base is None:
            log.warning("--aa-control needs the baseline plan %s in --precisions; no A/A control", name)
            return
        aa = PlanSlot(base.label + AA_SUFFIX, base.plan, base.model_path, base.model, dict(base.gemm_counts))
        self._activate(aa, shape, stack)
        slots.insert(slots.index(base) + 1, aa)

    def _make_runner(self, slot: PlanSlot, shape: Shape) -> Runner:
        options = self.runner_options(slot.plan.name, shape)
        if self.cfg.isolate == "process":
            keep = self.run_dir / "isolated" / f"s{shape.seq_len}-{slot.label}"
            return ProcessIsolatedRunner(BACKENDS[self.cfg.backend], slot.model_path, options, keep)
        return make_runner(self.cfg.backend, slot.model_path, options)

    def _timing_block(self, slot: PlanSlot, shape: Shape, r: int, tel: Any) -> tuple[np.ndarray, tuple[float, float]]:
        assert slot.runner is not None
        # a fresh process (--isolate process) starts cold every block: full warm-up each time
        first = not slot.latencies or self.cfg.isolate == "process"
        t0 = telemetry.clock()
        progress = self.reporter.progress(f"{slot.label} timing, round {r + 1}")
        lat = slot.runner.time_e2e(shape.feed, self.cfg.timing.block(first), progress)
        t1 = telemetry.clock()
        # energy per inference over the timed iterations only (the runner knows where warm-up ended)
        window = slot.runner.timed_window or (t0, t1)
        slot.latencies.append(np.asarray(lat, dtype=float))
        slot.windows.append(window)
        slot.telemetry.append(tel.summarize(window[0], window[1], len(lat)))
        return np.asarray(lat, dtype=float), window

    def _profiling_block(self, slot: PlanSlot, shape: Shape, r: int) -> tuple[pd.DataFrame | None, tuple[float, float]]:
        assert slot.runner is not None
        t0 = telemetry.clock()
        progress = self.reporter.progress(f"{slot.label} profiling, round {r + 1}")
        raw = slot.runner.profile_block(shape.feed, self.cfg.timing.profile_iterations, progress)
        t1 = telemetry.clock()
        if raw is None:
            slot.pending_profile_rounds.append(r)
        else:
            slot.profiles.append(raw.assign(round=r))
        return raw, (t0, t1)

    def _collect_profiles(self, slot: PlanSlot) -> None:
        """The rows of the blocks the runner kept until now, each with the round it ran in."""
        assert slot.runner is not None
        frames = slot.runner.finish_profiling()
        if len(frames) != len(slot.pending_profile_rounds):
            raise RuntimeError(
                f"{slot.runner.name} handed over {len(frames)} profiling blocks for "
                f"{len(slot.pending_profile_rounds)} it ran ({slot.label})"
            )
        slot.profiles += [f.assign(round=r) for f, r in zip(frames, slot.pending_profile_rounds)]
        slot.pending_profile_rounds.clear()

    def _finish_slot(self, slot: PlanSlot, shape: Shape) -> None:
        """While the runner is alive: the class map of the graph its profile names refer to (ONNX
        Runtime's optimised graph lives in the runner's temp dir), engine facts, and fidelity."""
        runner = slot.runner
        assert runner is not None and slot.info is not None
        self._collect_profiles(slot)
        graph = runner.attribution_graph() if slot.model is not None else None
        runtime_classes: pd.DataFrame | None = None
        if graph is not None and slot.model is not None:
            optimised = onnx.load(str(graph), load_external_data=False)
            # the plan's class map (inherited from the source) carried onto the runtime graph by
            # node and tensor identity: never re-classified on a graph whose MatMuls became
            # integer or fused ops
            runtime_classes = slot.model.runtime_classes(optimised)
            slot.int8_kernels.update(quantize.count_int8_kernels(optimised, attribute.dominant_class(runtime_classes)))
        if slot.model is not None and not any("layer_class" in p.columns for p in slot.profiles):
            slot.classes_for_profile = runtime_classes if runtime_classes is not None else slot.model.classes
        slot.info = runner.info()  # again: what the profiling runs measured (torch: GPU busy/idle, INT8 kernels)
        if "gemm_counts" in slot.info.details:
            slot.gemm_counts = dict(slot.info.details["gemm_counts"])
        # backends without an optimised ONNX graph may report what ran themselves (torch)
        slot.int8_kernels.update(slot.info.details.get("int8_kernels", {}))
        if slot.plan.is_int8 and slot.int8_recipe is None:
            slot.int8_recipe = slot.info.details.get("int8_recipe")
        slot.fidelity, slot.fidelity_note = self._fidelity(slot, shape)

    def _fidelity(self, slot: PlanSlot, shape: Shape) -> tuple[float, str | None]:
        runner = slot.runner
        if runner is None or not self.runner_cls.returns_outputs:
            return float("nan"), f"{self.cfg.backend} returns no model outputs"
        reference = self._reference(shape)
        if reference is None:
            return float("nan"), "no fp32 reference runner available"
        try:
            outs = [_first_output(o) for o in runner.infer_all(shape.held)]
        except OrinprofError as err:
            return float("nan"), err.one_line()
        return float(np.mean([cosine(a, b) for a, b in zip(outs, reference)])), None

    def _reference(self, shape: Shape) -> list[np.ndarray] | None:
        """fp32 outputs on the held-out inputs, once per shape: ONNX Runtime on the CPU for runners
        that consume ONNX, the same backend at fp32 for runners of the zoo's modules."""
        if shape.seq_len in self._references:
            return self._references[shape.seq_len]
        outs: list[np.ndarray] | None = None
        try:
            if self.runner_cls.consumes == "zoo":
                runner = make_runner(self.cfg.backend, Path("."), self.runner_options("fp32", shape))
            else:
                assert shape.exported is not None
                runner = make_runner(
                    ONNX_REFERENCE_BACKEND, shape.exported.path, RunnerOptions(device="cpu", threads=self.cfg.threads)
                )
            with runner:
                outs = [_first_output(runner.infer(f)).astype(np.float32) for f in shape.held]
        except OrinprofError as err:
            log.warning("no fp32 reference for the fidelity check: %s", err.one_line())
        self._references[shape.seq_len] = outs
        return outs

    # ------------------------------------------------------------------ 3. record
    def _keys(self, shape: Shape, slot: PlanSlot) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model": self.model_name,
            "backend": self.cfg.backend,
            "precision": slot.label,
            "batch": shape.batch,
            "seq_len": shape.seq_len,
        }

    def _block_row(
        self,
        shape: Shape,
        slot: PlanSlot,
        r: int,
        kind: str,
        pos: int,
        n: int,
        window: tuple[float, float],
        median: float,
    ) -> dict[str, Any]:
        return {
            **self._keys(shape, slot),
            "round": r,
            "kind": kind,
            "position": pos,
            "iterations": n,
            "start_s": window[0],
            "end_s": window[1],
            "median_ms": median,
        }

    def record(self, shape: Shape, slots: list[PlanSlot], tel_samples: pd.DataFrame | None = None) -> list[str]:
        """Every finished plan's rows; returns ``"<seq>/<plan>"`` of those written."""
        done = []
        for slot in slots:
            if not slot.alive or not slot.latencies:
                continue
            row, tables = self._rows(shape, slot)
            results.append_table(pd.DataFrame([row]), self.run_dir, "summary")
            for name, df in tables.items():
                if df is not None and len(df):
                    results.append_table(df, self.run_dir, name)
            self.rows_written = True
            done.append(f"{shape.seq_len}/{slot.label}")
            self.reporter.done(
                f"{self.model_name} · seq {shape.seq_len} · {slot.label}: median {row['e2e_median_ms']:.3f} ms"
            )
        if tel_samples is not None and len(tel_samples):
            samples = _label_samples(tel_samples, slots).assign(run_id=self.run_id, seq_len=shape.seq_len)
            results.append_table(samples, self.run_dir, "telemetry")
        return done

    def _rows(self, shape: Shape, slot: PlanSlot) -> tuple[dict[str, Any], dict[str, pd.DataFrame | None]]:
        keys = self._keys(shape, slot)
        assert slot.info is not None
        raw = pd.concat(slot.profiles, ignore_index=True) if slot.profiles else pd.DataFrame()
        flops = slot.model.flops if (self.runner_cls.engine_layers and slot.model is not None) else None
        layers = attribute.attribute_layers(
            raw.drop(columns=["round"], errors="ignore"), slot.classes_for_profile, flops
        )
        if all(v is None for v in slot.int8_kernels.values()):
            # engine backends: what ran in INT8 is the engine's layer precisions
            slot.int8_kernels.update(attribute.int8_layers_by_class(raw, layers) or {})
        roofline: dict[str, Any] = {}
        if self.cfg.roofline_device and shape.exported is not None and len(layers):
            assert shape.source is not None
            layers, roofline = _roofline(self.cfg, shape.source, slot.plan.name, layers, slot.latencies)
        totals = attribute.class_totals(layers) if len(layers) else {}
        per_iter = [
            attribute.class_times(p.drop(columns=["round"]), layers).assign(round=int(p["round"].iloc[0]))
            for p in slot.profiles
            if len(p)
        ]
        tel = _combine_windows(slot.telemetry)
        flags = [f for f in str(tel.pop("trust_flags", "") or "").split(";") if f]
        flags += attribute.attribution_flags(totals) if totals else []  # unattributed > 5 % of layer time
        known = {k: v for k, v in slot.int8_kernels.items() if v is not None}
        if slot.plan.is_int8 and shape.source is not None and len(known) == len(slot.int8_kernels):
            flags += quantize.int8_execution_flags(slot.plan, shape.source.classes, known)
        extra: dict[str, Any] = {
            "threads": slot.info.details.get("threads"),
            "backend_versions": ";".join(f"{k}={v}" for k, v in slot.info.versions.items()),
            # the first and last timed windows on the telemetry clock (``t_s`` of telemetry.csv)
            "window_start_s": slot.windows[0][0],
            "window_end_s": slot.windows[-1][1],
            "cuda_graph": bool(self.cfg.cuda_graph),
            "run_mode": self.mode,
            "kernel_time_classes": bool(self.runner_cls.kernel_time_classes),
            "fidelity_note": slot.fidelity_note,
            "int8_recipe": slot.int8_recipe,
            **slot.int8_kernels,
            **tel,
            **roofline,
        }
        if slot.lint is not None and len(slot.lint):
            cores = slot.lint.drop_duplicates(["block", "core"])
            extra["int8_mha_fusable_cores"] = f"{int((cores['verdict'] == 'fusable').sum())}/{len(cores)}"
        extra.update(_engine_facts(slot.info.details))
        extra.update(slot.info.details.get("summary_facts") or {})  # a backend's measured columns
        row = results.summary_row(
            keys,
            slot.latencies,
            device=slot.info.device,
            device_kind=slot.info.device_kind,
            class_totals=totals,
            gemm_counts=slot.gemm_counts,
            fidelity_cosine=slot.fidelity,
            telemetry_source=str(tel.get("telemetry_source", "none")),
            trust_flags=flags,
            extra=extra,
        )
        if "gpu_busy_ms" in row:  # kernel-time classes: the GPU's idle part of the timed forward
            row["gpu_idle_ms"] = row["e2e_median_ms"] - row["gpu_busy_ms"]
        tables: dict[str, pd.DataFrame | None] = {
            "layers": layers.assign(**keys) if len(layers) else None,
            "class_times": pd.concat(per_iter, ignore_index=True).assign(**keys) if per_iter else None,
            "qdq_lint": slot.lint.assign(**keys) if slot.lint is not None and len(slot.lint) else None,
        }
        return row, tables


# ----------------------------------------------------------------------------- --isolate process


def _isolated_call(target: str, model_path: Path, options: RunnerOptions, op: str, args: tuple, keep: Path) -> Any:  # type: ignore[type-arg]
    """In a fresh process: build the runner ``target`` (``module:Class``), activate it, do one
    operation, deactivate.  Module-level so the ``spawn`` start method can pickle it."""
    import importlib

    module_name, cls_name = target.split(":")
    cls: type[Runner] = getattr(importlib.import_module(module_name), cls_name)
    with cls(model_path, options) as runner:
        info = runner.info()
        if op == "time":
            lat = runner.time_e2e(*args)
            return lat, runner.timed_window, info
        if op == "profile":
            raw = runner.profile_layers(*args)
            graph = runner.attribution_graph()
            kept = None
            if graph is not None:  # the runner's temp dir dies with this process: keep its graph
                keep.mkdir(parents=True, exist_ok=True)
                kept = keep / "attribution_graph.onnx"
                shutil.copyfile(graph, kept)
            return raw, kept, info
        if op == "infer_all":
            return runner.infer_all(*args), None, info
        return None, None, info


class ProcessIsolatedRunner(Runner):
    """``--isolate process``: a stand-in runner that runs every block (timing, profiling, the
    fidelity inferences) in a fresh process, so no in-process state (allocator, caches, JIT, a
    CUDA context) carries from one block to the next; only what the backend keeps on disk
    (TensorRT engines, timing caches) persists.  Works for any registered backend.  Progress
    callbacks do not cross processes."""

    name = "isolated"

    def __init__(self, target: str, model_path: Path, options: RunnerOptions, keep: Path) -> None:
        super().__init__(model_path, options)
        self.target = target
        self.keep = keep
        self._info: BackendInfo | None = None
        self._graph: Path | None = None

    def _call(self, op: str, *args: Any) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            job = pool.submit(_isolated_call, self.target, self.model_path, self.options, op, args, self.keep)
            result, extra, info = job.result()
        self._info = info
        return result, extra

    def activate_impl(self) -> None:
        pass

    def info_impl(self) -> BackendInfo:
        if self._info is None:
            self._call("info")
        assert self._info is not None
        return self._info

    def time_e2e(self, feed: Feed, timing: TimingConfig, progress: Progress | None = None) -> np.ndarray:
        self._require_active()
        lat, window = self._call("time", dict(feed), timing)
        self.timed_window = window
        return np.asarray(lat, dtype=float)

    def profile_layers(self, feed: Feed, iterations: int, progress: Progress | None = None) -> pd.DataFrame:
        self._require_active()
        raw, self._graph = self._call("profile", dict(feed), iterations)
        return raw  # type: ignore[no-any-return]

    def infer_all(self, feeds: Sequence[Feed]) -> list[dict[str, np.ndarray]]:
        self._require_active()
        outs, _ = self._call("infer_all", [dict(f) for f in feeds])
        return outs  # type: ignore[no-any-return]

    def infer_impl(self, feed: Feed) -> dict[str, np.ndarray]:
        return self.infer_all([feed])[0]

    def attribution_graph(self) -> Path | None:
        return self._graph


def profile(cfg: ProfileConfig, reporter: Reporter | None = None) -> ProfileResult:
    """Run every plan at every sequence length in interleaved rounds; write a new run directory;
    return its tables."""
    return ProfileRun(cfg, reporter).run()


def prepare(cfg: ProfileConfig, reporter: Reporter | None = None) -> list[tuple[int, quantize.PlannedModel]]:
    """Export, analyse and write every plan's ONNX without measuring (``orinprof export``): the
    host-side half of the Jetson workflow, for a device without torch."""
    reporter = reporter or Reporter()
    spec, plans, _cls = _check_config(replace(cfg, backend=ONNX_REFERENCE_BACKEND))
    recipe = _int8_recipe(cfg, None)
    out = []
    for seq in list(cfg.seq_lens) or ([spec.default_seq] if spec else [0]):
        if spec is not None:
            exported = export.export_preset(spec, cfg.batch, seq, cfg.opset, Path(cfg.models_dir), cfg.seed)
        else:
            exported = export.from_onnx(Path(cfg.onnx or ""), cfg.batch, seq or None)
        source = AnalysedModel.load(exported.path)
        _feed, _held, calib, calib_id = _samples(exported.inputs, cfg)
        for plan in plans:
            reporter.stage(f"{exported.model} · seq {exported.seq_len} · {plan.name}")
            planned = quantize.apply_plan(
                exported, plan, source.classes, calib, calib_id, cfg.calib_method, recipe=recipe
            )
            out.append((exported.seq_len, planned))
    return out


def _int8_recipe(cfg: ProfileConfig, runner_cls: type[Runner] | None) -> str:
    """``--int8-recipe`` (or ``--qdq-style``) resolved for the backend that runs the plans; for
    ``export`` (``runner_cls`` None) any recipe, and ``auto`` is TensorRT's layout (the Jetson
    workflow)."""
    supported = runner_cls.int8_recipes if runner_cls is not None else tuple(quantize.INT8_RECIPES)
    backend = cfg.backend if runner_cls is not None else "export"
    return quantize.resolve_recipe(cfg.int8_recipe, supported, backend, cfg.qdq_style)


def _combine_windows(windows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One plan's telemetry over its timing blocks: minima of ``*_min``, maxima of ``*_max``, sums
    of sample counts, means of the rest; trust flags united; text from the first block."""
    if not windows:
        return {}
    out: dict[str, Any] = {}
    for key in dict.fromkeys(k for w in windows for k in w):
        values = [w.get(key) for w in windows]
        if key == "trust_flags":
            flags = [f for v in values if isinstance(v, str) for f in v.split(";") if f]
            out[key] = ";".join(dict.fromkeys(flags))
            continue
        nums = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if nums and len(nums) == len([v for v in values if v is not None]):
            arr = np.asarray(nums, dtype=float)
            if not np.isfinite(arr).any():
                out[key] = float("nan")
            elif key.endswith("_min"):
                out[key] = float(np.nanmin(arr))
            elif key.endswith("_max"):
                out[key] = float(np.nanmax(arr))
            elif key == "telemetry_samples":
                out[key] = int(np.nansum(arr))
            else:
                out[key] = float(np.nanmean(arr))
        else:
            out[key] = next((v for v in values if v is not None and v == v), None)
    return out


def _label_samples(samples: pd.DataFrame, slots: Sequence[PlanSlot]) -> pd.DataFrame:
    """Telemetry samples tagged with the plan whose timing block they fall in (empty between)."""
    label = pd.Series([None] * len(samples), index=samples.index, dtype=object)
    t = samples["t_s"].to_numpy(dtype=float)
    for slot in slots:
        for t0, t1 in slot.windows:
            label[(t >= t0) & (t <= t1)] = slot.label
    return samples.assign(precision=label)


def _roofline(
    cfg: ProfileConfig,
    source: AnalysedModel,
    plan: str,
    layers: pd.DataFrame,
    round_latencies: Sequence[np.ndarray],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Each layer's roofline floor on ``cfg.roofline_device`` and measured efficiency (floor ÷
    median), and the model-level figure: the sum of the floors ÷ the median of round medians."""
    from orinprof import devices, roofline

    try:
        device = devices.get_device(cfg.roofline_device or "", results_dir=Path(cfg.results_dir))
        # the export as analysed once (its proto and class map), not re-loaded and re-classified
        nodes = roofline.project(
            source.proto, device, [plan] if plan.startswith("int8") else [], classes=source.classes
        )
    except OrinprofError as err:
        log.warning("roofline skipped: %s", err.one_line())
        return layers, {}
    nodes = nodes[nodes["plan"] == (plan if plan.startswith("int8") else device.baseline)].assign(plan=plan)
    floors = roofline.layer_floors(layers.assign(precision=plan), nodes).drop(columns=["precision"])
    floor_ms = float(nodes["floor_ms"].sum())
    median = float(np.median([np.median(r) for r in round_latencies]))
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
        # None = unknown (a TensorRT 8.6 Myelin region may hide the kernel), never a false "no"
        out["fused_mha"] = None if details["fused_mha"] is None else bool(details["fused_mha"])
        out["fused_mha_precision"] = ";".join(str(p) for p in details.get("fused_mha_precisions", [])) or None
    if "typing" in details:  # the typing the engine was built with (review m3)
        out["engine_typing"] = str(details["typing"])
    if "myelin_regions" in details:  # opaque {ForeignNode[...]} layers: their time is unattributed
        out["myelin_regions"] = int(details["myelin_regions"])
    counts = details.get("precision_counts")
    if isinstance(counts, Mapping):
        out["int8_layers"] = int(sum(v for k, v in counts.items() if "int8" in str(k).lower()))
    return out


def _lint(model: AnalysedModel) -> pd.DataFrame | None:
    """TensorRT INT8 fused-attention preconditions of the plan's Q/DQ layout (``orinprof lint-qdq``),
    on the plan's analysed model (its inherited class map: no second classification)."""
    from orinprof.lint import lint_qdq

    try:
        return lint_qdq(model.proto, model.classes)
    except OrinprofError as err:  # the lint informs; it never stops a measurement
        log.warning("Q/DQ lint skipped for %s: %s", model.path.name, err.one_line())
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
