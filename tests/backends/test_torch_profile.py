"""Per-module profiling regions of the torch backend (CPU: perf_counter stamps)."""

from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from orinprof import models  # noqa: E402
from orinprof.backends.base import RAW_PROFILE_COLUMNS, RunnerOptions  # noqa: E402
from orinprof.backends.torch.profile import PROFILE_COLUMNS, module_regions, profile_modules  # noqa: E402
from orinprof.backends.torch.runner import TorchRunner  # noqa: E402
from orinprof.export import synthesize  # noqa: E402
from orinprof.results import LAYER_CLASSES  # noqa: E402


def _expected(spec):
    """Regions per class, read off the architectures: one attention and one FFN region per block;
    two norms per block plus the final one (BERT: the embedding LayerNorm instead); BERT has three
    embedding tables, GPT-2 two, Llama one, ViT its patch convolution; GPT-2 and Llama an LM head."""
    n = spec.config["num_layers"]
    emb = {"bert": 3, "gpt2": 2, "llama": 1, "vit": 1}[spec.family]
    other = {"bert": 0, "vit": 0, "gpt2": 1, "llama": 1}[spec.family]
    out = {"attention": n, "ffn": n, "norm": 2 * n + 1, "embedding": emb, "other": other}
    return {k: v for k, v in out.items() if v}


@pytest.mark.parametrize("preset", ["bert-tiny", "vit-tiny", "gpt2-tiny", "llama-tiny"])
def test_profile_rows_per_class(preset):
    spec = models.get(preset)
    opts = RunnerOptions(device="cpu", threads=1, extra={"preset": preset, "precision": "int8-all", "batch": 1})
    feed = synthesize(spec.inputs(1, spec.default_seq), np.random.default_rng(0))
    with TorchRunner(None, opts) as r:
        df = r.profile_layers(feed, 3)
        hooks = [m for m in r.module.modules() if m._forward_hooks or m._forward_pre_hooks]
    assert list(df.columns) == list(PROFILE_COLUMNS)
    assert set(RAW_PROFILE_COLUMNS) <= set(df.columns)
    assert sorted(df["iteration"].unique()) == [0, 1, 2]
    per_iter = df[df["iteration"] == 0].groupby("layer_class").size().to_dict()
    assert per_iter == _expected(spec)
    assert set(df["layer_class"]) <= set(LAYER_CLASSES)
    assert np.all(np.isfinite(df["time_ms"])) and np.all(df["time_ms"] > 0)
    assert (df["onnx_nodes"] == "").all()
    in_blocks = df["layer_class"].isin(["attention", "ffn"])
    assert df.loc[in_blocks, "block"].notna().all()
    assert set(df.loc[in_blocks, "block"].astype(int)) == set(range(spec.config["num_layers"]))
    assert df.loc[df["layer_class"] == "embedding", "block"].isna().all()
    assert not hooks  # the profiling hooks are gone: the timing run never carries them


def test_regions_do_not_overlap_so_their_sum_fits_in_the_forward():
    spec = models.get("gpt2-tiny")
    model = models.build(spec)
    ids = torch.randint(0, 1000, (1, 32))
    walls = []

    def forward():
        t0 = time.perf_counter()
        with torch.inference_mode():
            model(ids)
        walls.append((time.perf_counter() - t0) * 1e3)

    df = profile_modules(model, spec.family, forward, 4, cuda=False)
    sums = df.groupby("iteration")["time_ms"].sum().to_numpy()
    assert np.all(sums <= np.asarray(walls))


def test_bert_attention_region_spans_self_attention_to_output_dense():
    regions = {r.name: r for r in module_regions(models.build("bert-tiny"), "bert")}
    att = regions["encoder.layer.1.attention"]
    assert (att.start, att.end, att.block) == (
        "encoder.layer.1.attention.self",
        "encoder.layer.1.attention.output.dense",
        1,
    )
    assert regions["encoder.layer.1.attention.output.LayerNorm"].layer_class == "norm"
    assert regions["encoder.layer.1.ffn"].end == "encoder.layer.1.output.dense"


def test_progress_is_reported():
    seen = []
    model = models.build("llama-tiny")
    ids = torch.randint(0, 1000, (1, 16))
    profile_modules(model, "llama", lambda: model(ids), 3, cuda=False, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
