"""Card 3 (activation outliers): captured hidden states → the ``outliers`` table.

:func:`activation_outlier_stats` gives, per layer, the mean |x| of the top dimensions over the
median dimension's, with a bootstrap CI over tokens; :func:`outlier_experiment` captures a zoo
BERT's hidden states on probe texts (torch runs here only to read activations, which no backend
exposes) and builds the table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from orinprof import results, stats
from orinprof.errors import OrinprofError
from orinprof.identity import cpu_model
from orinprof.results import Column, Table

OUTLIERS_TABLE = results.register(
    Table(
        name="outliers",
        file="outliers.csv",
        description=(
            "Card 3: per hidden-state layer, how much larger the top dimensions' mean |activation| is than "
            "the median dimension's (over all non-padding tokens of the probe texts)."
        ),
        keys=("model", "layer"),
        columns=(
            Column("run_id", "str", "run (or capture) id"),
            Column("model", "str", "model"),
            Column("backend", "str", "what computed the hidden states (e.g. `torch`)"),
            Column("device", "str", "device"),
            Column("seq_len", "int", "longest probe sequence (tokens)"),
            Column("layer", "int", "hidden-state index: 0 = embeddings output, i = after block i"),
            Column("hidden_size", "int", "dimensions"),
            Column("tokens", "int", "non-padding tokens the statistics are over"),
            Column("top_k", "int", "how many top dimensions (`ceil(top_fraction × hidden_size)`)"),
            Column("top_dims", "str", "indices of the top dimensions, `;`-separated, largest first"),
            Column("top_mean_abs", "float", "mean over the top dimensions of their mean |x|"),
            Column("median_mean_abs", "float", "median over dimensions of the mean |x|"),
            Column("top_to_median_ratio", "float", "top_mean_abs ÷ median_mean_abs", "ratio"),
            Column("top_to_median_ratio_ci_low", "float", "bootstrap 95% CI over tokens, lower", "ratio", True),
            Column("top_to_median_ratio_ci_high", "float", "bootstrap 95% CI over tokens, upper", "ratio", True),
        ),
    )
)


def _top_ratio(mean_abs: np.ndarray, top_k: int) -> np.ndarray:
    """Ratio of the top-k dimensions' mean to the median dimension, along the last axis."""
    top = -np.sort(-mean_abs, axis=-1)[..., :top_k].mean(axis=-1)
    return np.asarray(top / np.median(mean_abs, axis=-1))


def activation_outlier_stats(
    hidden_states: Sequence[np.ndarray],
    model: str,
    top_fraction: float = 0.01,
    run_id: str = "",
    backend: str = "torch",
    device: str = "",
    seq_len: int | None = None,
    resamples: int = 500,
) -> pd.DataFrame:
    """``outliers`` table from per-layer hidden states, each ``(tokens, hidden)`` without padding.

    The CI resamples tokens (the statistic is recomputed from resampled per-token |x| rows) with
    :func:`orinprof.stats.bootstrap_ci`, which resamples the token indices we hand it.
    """
    if not 0 < top_fraction < 0.5:
        raise OrinprofError(f"top_fraction {top_fraction} out of range", "use a small fraction such as 0.01")
    rows = []
    for layer, h in enumerate(hidden_states):
        absx = np.abs(np.asarray(h, dtype=np.float64))
        if absx.ndim != 2 or absx.shape[0] < 2:
            raise OrinprofError(f"hidden state {layer} has shape {absx.shape}", "pass (tokens, hidden) arrays")
        n_tokens, hidden = absx.shape
        top_k = max(1, math.ceil(top_fraction * hidden))
        mean_abs = absx.mean(axis=0)
        order = np.argsort(-mean_abs)
        median = float(np.median(mean_abs))
        top_mean = float(mean_abs[order[:top_k]].mean())

        def statistic(index_samples: np.ndarray, absx: np.ndarray = absx, top_k: int = top_k) -> np.ndarray:
            # token counts per resample → per-dimension means as one matrix product
            idx = index_samples.astype(np.int64)
            counts = np.zeros((idx.shape[0], absx.shape[0]))
            np.add.at(counts, (np.arange(idx.shape[0])[:, None], idx), 1.0)
            return _top_ratio(counts @ absx / idx.shape[1], top_k)

        lo, hi = stats.bootstrap_ci(np.arange(n_tokens, dtype=float), statistic, resamples=resamples)
        rows.append(
            {
                "run_id": run_id,
                "model": model,
                "backend": backend,
                "device": device,
                "seq_len": seq_len if seq_len is not None else n_tokens,
                "layer": layer,
                "hidden_size": hidden,
                "tokens": n_tokens,
                "top_k": top_k,
                "top_dims": ";".join(str(int(i)) for i in order[:top_k]),
                "top_mean_abs": top_mean,
                "median_mean_abs": median,
                "top_to_median_ratio": top_mean / median if median > 0 else float("nan"),
                "top_to_median_ratio_ci_low": lo,
                "top_to_median_ratio_ci_high": hi,
            }
        )
    if not rows:
        raise OrinprofError("no hidden states given", "capture at least one layer")
    return results.check(pd.DataFrame(rows), "outliers")


#: Probe texts for card 3: varied registers, short enough to run in seconds on a CPU.
PROBE_TEXTS = (
    "The quick brown fox jumps over the lazy dog.",
    "INT8 quantization maps each activation to one of 256 levels with a per-tensor scale.",
    "Jetson AGX Orin pairs an Ampere GPU with twelve Arm Cortex-A78AE cores.",
    "She booked a table for two at the small restaurant near the harbour.",
    "In 1969, Apollo 11 landed on the Moon and returned safely to Earth.",
    "def add(a, b): return a + b  # a tiny Python function",
    "Spaced repetition schedules each review just before you would forget the card.",
    "The committee postponed its decision until more data were available.",
    "Transformers attend to every token, so attention cost grows with sequence length squared.",
    "Rain is expected tomorrow afternoon, with clearing skies by the evening.",
    "Please restart the router and check whether the status light turns green.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
)


def capture_hidden_states(model: str = "minilm-l6", texts: Sequence[str] = PROBE_TEXTS) -> tuple[list[np.ndarray], int]:
    """Hidden states of a zoo BERT model (embeddings output + each block's output), padding removed.

    Returns ``(per-layer (tokens, hidden) arrays, longest sequence)``.  Torch runs here only to read
    activations, which no backend exposes; the tokenizer is the model package's own tokenizer.json."""
    from orinprof import models

    spec = models.get(model)
    if spec.family != "bert" or not spec.pretrained:
        raise OrinprofError(f"{model} is not a pretrained BERT preset", "card 3 needs real weights: use minilm-l6")
    try:
        import torch
        from tokenizers import Tokenizer
    except ImportError as err:
        raise OrinprofError(
            f"card 3 needs torch and tokenizers ({err.name} is missing)", "pip install 'orinprof[torch,hf]'"
        ) from err
    from orinprof.models.pretrained import model_dir

    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()  # the shipped tokenizer.json pads to 128; padding would dilute the statistics
    encodings = [tokenizer.encode(t) for t in texts]
    module = models.build(spec)
    captured: list[list[np.ndarray]] = []

    def keep(_module: object, _inputs: object, output: torch.Tensor) -> None:
        captured[-1].append(output.detach().float().numpy()[0])

    hooks = [module.embeddings.register_forward_hook(keep)]
    hooks += [layer.register_forward_hook(keep) for layer in module.encoder.layer]
    try:
        with torch.no_grad():
            for enc in encodings:  # one text at a time: no padding to strip
                captured.append([])
                ids = torch.tensor([enc.ids])
                module(ids, torch.ones_like(ids), torch.tensor([enc.type_ids]))
    finally:
        for h in hooks:
            h.remove()
    layers = [np.concatenate([per_text[i] for per_text in captured]) for i in range(len(captured[0]))]
    return layers, max(len(e.ids) for e in encodings)


def outlier_experiment(
    model: str = "minilm-l6", top_fraction: float = 0.01, texts: Sequence[str] = PROBE_TEXTS
) -> pd.DataFrame:
    """Card 3 end to end: capture ``model``'s hidden states on the probe texts → ``outliers`` table."""
    hidden, longest = capture_hidden_states(model, texts)
    from orinprof.results import new_run_id

    return activation_outlier_stats(
        hidden,
        model=model,
        top_fraction=top_fraction,
        run_id=new_run_id(f"{model}-outliers", "torch"),
        backend="torch",
        device=cpu_model(),
        seq_len=longest,
    )
