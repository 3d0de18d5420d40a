"""Torch runner: lifecycle, options, fidelity output, timing, and the bad-input errors (no CUDA, a GPU
without INT8 tensor cores, out of memory).  CPU here; GPU tests carry the ``gpu`` marker."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from orinprof import models  # noqa: E402
from orinprof.backends import available, make_runner  # noqa: E402
from orinprof.backends.base import RunnerOptions, TimingConfig  # noqa: E402
from orinprof.backends.torch import runner as torch_runner  # noqa: E402
from orinprof.backends.torch.runner import TorchRunner, cuda_probe, probe  # noqa: E402
from orinprof.errors import OrinprofError  # noqa: E402
from orinprof.export import synthesize  # noqa: E402

HAS_CUDA, CUDA_REASON = cuda_probe()


def _runner(preset="bert-tiny", precision="fp32", device="cpu", **kw):
    extra = {"preset": preset, "precision": precision, "batch": 2, **kw.pop("extra", {})}
    return make_runner("torch", None, RunnerOptions(device=device, extra=extra, **kw))


def _feed(preset="bert-tiny", batch=2, seed=3):
    spec = models.get(preset)
    return synthesize(spec.inputs(batch, spec.default_seq), np.random.default_rng(seed))


def _cos(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_registry_lists_torch_with_a_probe():
    rows = {a.name: a for a in available()}
    ok, reason = probe()
    assert rows["torch"].ok is ok is True
    assert f"torch {torch.__version__}" in reason
    assert isinstance(make_runner("torch", None, RunnerOptions(extra={"preset": "bert-tiny"})), TorchRunner)


def test_lifecycle_and_fidelity_output():
    r = _runner(precision="fp16", threads=1)
    feed = _feed()
    with pytest.raises(RuntimeError, match="before activate"):
        r.infer(feed)
    threads_before = torch.get_num_threads()
    with r:
        assert torch.get_num_threads() == 1
        out = r.infer(feed)
        info = r.info()
    assert r.module is None and torch.get_num_threads() == threads_before
    assert set(out) == {"output"} and out["output"].dtype == np.float32
    assert out["output"].shape == (2, models.get("bert-tiny").default_seq, 64)
    assert info.name == "torch" and info.device_kind == "cpu"
    assert info.details["compute_dtype"] == "float16"
    assert info.details["precision_map"]["attention core (QKᵀ, softmax, PV)"].startswith("float16")
    with _runner(precision="fp32") as ref:
        assert _cos(ref.infer(feed)["output"], out["output"]) > 0.999


@pytest.mark.parametrize("plan", ["int8-attn", "int8-ffn", "int8-all"])
def test_int8_plans_report_what_ran_where(plan):
    with _runner("llama-tiny", plan) as r:
        info = r.info()
        out = r.infer(_feed("llama-tiny"))["output"]
    with _runner("llama-tiny", "fp32") as ref:
        assert _cos(ref.infer(_feed("llama-tiny"))["output"], out) > 0.999
    pm = info.details["precision_map"]
    counts = info.details["gemm_counts"]
    assert ("int8" in pm["attention projections"]) == (plan in ("int8-attn", "int8-all"))
    assert ("int8" in pm["ffn linears"]) == (plan in ("int8-ffn", "int8-all"))
    assert "int8" not in pm["attention core (QKᵀ, softmax, PV)"]
    # 2 blocks × (q, k, v, o | gate, up, down) + the LM head, which no plan quantizes
    assert counts["gemms_int8_attention"] == (8 if "int8" in pm["attention projections"] else 0)
    assert counts["gemms_int8_ffn"] == (6 if "int8" in pm["ffn linears"] else 0)
    assert counts["gemms_int8_other"] == 0
    assert counts["gemms_total"] == 2 * (4 + 3) + 1


def test_time_e2e_returns_every_latency():
    timing = TimingConfig(warmup_iters=2, warmup_s=0.0, iterations=7)
    with _runner(threads=1) as r:
        lat = r.time_e2e(_feed(), timing)
    assert lat.shape == (7,) and np.all(np.isfinite(lat)) and np.all(lat > 0)


def test_cuda_graph_is_ignored_on_cpu(caplog):
    with _runner(cuda_graph=True, threads=1) as r:
        r.time_e2e(_feed(), TimingConfig(warmup_iters=1, warmup_s=0.0, iterations=2))
        assert r.info().details["cuda_graph"] is False
    assert "cuda_graph ignored" in caplog.text


def test_spec_from_measure_wins_over_preset_name():
    variant = models.with_config(models.get("bert-tiny"), num_layers=1)
    with _runner(preset=variant.name, extra={"spec": variant, "engine_dir": None}) as r:
        assert r.spec is variant
        assert r.info().details["gemm_counts"]["gemms_total"] == 6  # one BERT block: 4 + 2


def test_missing_input_is_named():
    feed = _feed()
    del feed["attention_mask"]
    with _runner() as r, pytest.raises(OrinprofError, match="attention_mask missing"):
        r.infer(feed)


# --------------------------------------------------------------------------- bad input


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_no_cuda_device_is_one_line_error():
    r = _runner(device="cuda")
    with pytest.raises(OrinprofError) as info:
        r.activate()
    assert info.value.message.startswith("no CUDA device")
    assert "--device cpu" in info.value.hint and "onnxruntime" in info.value.hint
    assert "\n" not in info.value.one_line()
    assert r.module is None


@pytest.mark.parametrize(
    ("extra", "device", "match"),
    [
        ({"preset": "bert-tiny", "precision": "int4"}, "cpu", "unknown precision 'int4'"),
        ({"preset": "bert-tiny", "int8_impl": "cutlass"}, "cpu", "unknown int8_impl"),
        ({"preset": "bert-tiny", "act_granularity": "per_row"}, "cpu", "unknown act_granularity"),
        ({}, "cpu", "needs a model preset"),
        ({"preset": "bert-tiny"}, "tpu", "not a torch device"),
    ],
)
def test_bad_options(extra, device, match):
    with pytest.raises(OrinprofError, match=match):
        make_runner("torch", None, RunnerOptions(device=device, extra=extra))


def test_bad_shape_and_preset():
    with pytest.raises(OrinprofError, match="beyond bert-tiny's maximum"):
        _runner(extra={"seq_len": 4096}).activate()
    with pytest.raises(OrinprofError, match="unknown model preset"):
        _runner(preset="bert-huge").activate()


class _FakeCuda:
    """Enough of torch.cuda to reach the capability check on a CPU-only machine."""

    def __init__(self, capability):
        self.capability = capability

    def patch(self, monkeypatch):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: self.capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla V100-SXM2-16GB")
        monkeypatch.setattr(torch.cuda, "set_device", lambda i: None)
        monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)


def test_int8_on_gpu_without_int8_tensor_cores(monkeypatch):
    _FakeCuda((7, 0)).patch(monkeypatch)
    built = []
    monkeypatch.setattr(models, "build", lambda *a, **k: built.append(a))
    with pytest.raises(OrinprofError) as info:
        _runner(precision="int8-ffn", device="cuda").activate()
    assert "int8-ffn needs INT8 tensor cores" in info.value.message
    assert "7.0" in info.value.message and "fp16" in info.value.hint
    assert not built  # refused before building anything


def test_cuda_device_index_out_of_range(monkeypatch):
    _FakeCuda((9, 0)).patch(monkeypatch)
    with pytest.raises(OrinprofError, match="CUDA device 3 does not exist"):
        _runner(device="cuda:3").activate()


def test_out_of_memory_becomes_one_line_error(monkeypatch):
    def boom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(models, "build", boom)
    r = _runner(extra={"seq_len": 128})
    with pytest.raises(OrinprofError) as info:
        r.activate()
    assert info.value.message.startswith("CUDA out of memory while loading the model")
    assert "seq 128" in info.value.message
    assert "smaller --seq or --batch" in info.value.hint


def test_old_torch_is_refused(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.0.1")
    with pytest.raises(OrinprofError, match=r"older than 2\.2"):
        torch_runner._import_torch()


# --------------------------------------------------------------------------- GPU (lent machine)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason=CUDA_REASON)
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_gpu_plans_run_and_stay_faithful(cuda_graph):
    feed = _feed("bert-tiny")
    with _runner(device="cuda", precision="fp32") as ref:
        base = ref.infer(feed)["output"]
    for plan in ("fp16", "int8-all"):
        with _runner(device="cuda", precision=plan, cuda_graph=cuda_graph) as r:
            lat = r.time_e2e(feed, TimingConfig(warmup_iters=3, warmup_s=0.0, iterations=5))
            prof = r.profile_layers(feed, 2)
            assert _cos(base, r.infer(feed)["output"]) > 0.999
            assert r.info().details["cuda_graph"] is cuda_graph
        assert np.all(lat > 0) and set(prof["layer_class"]) >= {"attention", "ffn"}


# --------------------------------------------------------------------------- CLI


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA")
def test_cli_no_cuda_is_one_line_and_keeps_earlier_results(tmp_path):
    from typer.testing import CliRunner

    from orinprof.cli import app

    if "profile" not in {c.name or c.callback.__name__ for c in app.registered_commands}:
        pytest.skip("the profile command is not registered in this checkout")
    earlier = tmp_path / "results" / "earlier-run" / "summary.csv"
    earlier.parent.mkdir(parents=True)
    earlier.write_text("kept\n")
    args = ["profile", "--backend", "torch", "--device", "cuda", "--model", "bert-tiny", "--precisions", "fp16"]
    args += ["--seq", "32", "--telemetry", "none", "--results-dir", str(tmp_path / "results")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("orinprof: error:")]
    assert len(lines) == 1 and "no CUDA device" in lines[0] and "--device cpu" in lines[0]
    assert "Traceback" not in result.output
    assert earlier.read_text() == "kept\n"


# --------------------------------------------------------------------------- INT8 recipes


def test_runner_records_the_int8_recipe():
    with _runner(precision="int8-ffn") as r:
        details = r.info().details
    assert details["int8_recipe"] == "w8a8-dynamic"  # auto on the CPU
    # the summary gets the recipe; kernel facts come only from a CUDA profiling run
    assert details["summary_facts"] == {"int8_recipe": "w8a8-dynamic"}
    with _runner(precision="int8-ffn", extra={"int8_impl": "int_mm", "act_granularity": "per_tensor"}) as r:
        assert r.info().details["int8_recipe"] == "custom:int_mm/per_tensor"
    with _runner(precision="fp16") as r:
        assert "int8_recipe" not in r.info().details


def test_static_recipe_calibrates_and_stays_faithful():
    feed = _feed()
    extra = {"int8_impl": "int_mm", "act_granularity": "per_tensor_static"}
    with _runner(precision="int8-all", extra=extra) as r:
        out = r.infer(feed)["output"]
        details = r.info().details
        scales = [m.act_scale for m in r.module.modules() if getattr(m, "act_scale", None) is not None]
    assert details["int8_recipe"] == "custom:int_mm/per_tensor_static"
    assert "per_tensor_static" in details["precision_map"]["ffn linears"]
    assert len(scales) == details["gemm_counts"]["gemms_int8_attention"] + details["gemm_counts"]["gemms_int8_ffn"]
    with _runner(precision="fp32") as ref:
        assert _cos(ref.infer(feed)["output"], out) > 0.99


def test_unknown_recipe_and_timer_are_one_line_errors():
    with pytest.raises(OrinprofError, match="unknown int8_recipe"):
        _runner(precision="int8-all", extra={"int8_recipe": "trt-qdq"})
    with pytest.raises(OrinprofError, match="unknown class_timer"):
        _runner(extra={"class_timer": "nsys"})


# --------------------------------------------------------------------------- kernel time (lent machine)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason=CUDA_REASON)
@pytest.mark.parametrize("cuda_graph", [False, True])
@pytest.mark.parametrize("plan", ["fp16", "int8-ffn"])
def test_gpu_class_times_are_kernel_time_within_e2e(cuda_graph, plan):
    feed = _feed("bert-tiny")
    extra = {"int8_recipe": "w8a8-dynamic"}  # eager _int_mm: no compile time in a test
    with _runner(device="cuda", precision=plan, cuda_graph=cuda_graph, extra=extra) as r:
        lat = r.time_e2e(feed, TimingConfig(warmup_iters=5, warmup_s=0.0, iterations=50))
        prof = r.profile_layers(feed, 5)
        facts = r.info().details["summary_facts"]
    per_iter = prof.groupby("iteration")["time_ms"].sum()
    assert per_iter.median() == pytest.approx(facts["gpu_busy_ms"], rel=1e-6)
    assert 0 < facts["gpu_busy_ms"] <= facts["profiled_span_ms"]
    if cuda_graph:  # busy time fits in the replay's e2e; every replay kernel found its eager twin
        assert facts["gpu_busy_ms"] <= float(np.median(lat)) * 1.02
        assert facts["class_time_source"] == "kernels:cuda_graph_replay"
        assert facts["kernels_unattributed"] <= 0.02 * facts["kernels_per_iteration"]
    # 2 blocks × (up, down) through torch._int_mm in int8-ffn; none in fp16
    assert facts["int8_kernels_ffn"] == (4 if plan == "int8-ffn" else 0)
    assert facts["int8_kernels_attention"] == 0
    by_class = prof.groupby("layer_class")["time_ms"].sum()
    assert by_class["attention"] > 0 and by_class["ffn"] > 0


def test_profiling_replica_in_a_child_process_gives_the_same_rows():
    """profile_process='child' (the default for kernel time on CUDA, where a profiler session in
    the timing process slowed later CUDA-graph replays 12–20 % on the H200): a spawned replica
    with the same options profiles the same regions; it lives across calls and ends with the runner."""
    feed = _feed()
    with _runner(threads=1) as here:
        same = here.profile_layers(feed, 2)
    with _runner(threads=1, extra={"profile_process": "child"}) as r:
        first = r.profile_layers(feed, 2)
        second = r.profile_layers(feed, 3)
        process = r._child[0]
        assert process.is_alive()
    assert not process.is_alive()
    for rows, n in ((first, 2), (second, 3)):
        assert list(rows.columns) == list(same.columns)
        assert rows["iteration"].nunique() == n
        assert set(zip(rows["layer"], rows["layer_class"])) == set(zip(same["layer"], same["layer_class"]))
        assert (rows["time_ms"] > 0).all()
