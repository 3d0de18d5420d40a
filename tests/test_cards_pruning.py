"""Cards 6 and 10: the pruned preset variants really are what the pruning table says they are."""

from __future__ import annotations

import numpy as np
import pytest

from orinprof import models
from orinprof.cards import pruning_variants, variant_spec
from orinprof.errors import OrinprofError

torch = pytest.importorskip("torch")

DEEP_TINY = "bert-tiny[num_layers=4]"  # bert-tiny's 2 layers: one layer outweighs all heads


def _block_linears(module: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    return {n: m for n, m in module.named_modules() if isinstance(m, torch.nn.Linear) and n.startswith("encoder.")}


def _gemm_weights(spec: models.ModelSpec) -> int:
    """Weights of the encoder GEMMs, counted from the built module (biases excluded)."""
    return sum(m.weight.numel() for m in _block_linears(models.build(spec)).values())


def test_variant_names_resolve_to_the_same_config() -> None:
    base = models.get("bert-tiny")
    variant = models.with_config(models.with_config(base, num_layers=4), num_heads=2, head_dim=16)
    resolved = models.get(variant.name)
    assert resolved.name == variant.name and dict(resolved.config) == dict(variant.config)
    assert models.get(f"bert-tiny[prune_unstructured={0.5}]").config["prune_unstructured"] == 0.5
    with pytest.raises(OrinprofError, match="unknown config key"):
        models.get("bert-tiny[num_layer=3]")
    with pytest.raises(OrinprofError, match="unknown model preset"):
        models.get("bert-huge[num_layers=3]")


def test_unstructured_variant_keeps_shapes_and_zeroes_the_smallest_half() -> None:
    spec = models.get("bert-tiny")
    dense = models.build(spec)
    pruned = models.build(models.with_config(spec, prune_unstructured=0.5))
    dense_params, pruned_params = dict(dense.named_parameters()), dict(pruned.named_parameters())
    assert {n: p.shape for n, p in dense_params.items()} == {n: p.shape for n, p in pruned_params.items()}
    linears = _block_linears(pruned)
    assert len(linears) == 6 * spec.config["num_layers"]  # Q, K, V, O, FFN up, FFN down
    for name, linear in linears.items():
        w = linear.weight.detach().numpy()
        original = dense_params[f"{name}.weight"].detach().numpy()
        zero = w == 0
        assert zero.sum() == round(0.5 * w.size), name
        assert np.array_equal(w[~zero], original[~zero])  # survivors untouched
        assert np.abs(original[zero]).max() <= np.abs(original[~zero]).min()  # the smallest went
        assert torch.equal(linear.bias, dense_params[f"{name}.bias"])
    emb = "embeddings.word_embeddings.weight"
    assert torch.equal(dense_params[emb], pruned_params[emb])
    ids = torch.zeros(1, 8, dtype=torch.long)
    assert pruned(ids, torch.ones_like(ids), ids).shape == (1, 8, spec.config["hidden_size"])


def test_structured_variants_remove_the_parameters_they_claim() -> None:
    spec = models.get(DEEP_TINY)
    full = _gemm_weights(spec)
    variants = {v.kind: v for v in pruning_variants(spec)}
    assert set(variants) == {"unstructured", "heads+ffn", "layers", "heads"}
    removed = {}
    for kind in ("heads+ffn", "layers", "heads"):
        removed[kind] = 1 - _gemm_weights(variant_spec(spec, variants[kind])) / full
        assert removed[kind] == pytest.approx(variants[kind].params_removed_fraction), kind
    assert removed["heads+ffn"] == pytest.approx(0.5)
    assert removed["layers"] == pytest.approx(removed["heads"])  # card 10: equal parameter reduction
    assert variant_spec(spec, variants["layers"]).config["num_layers"] == 3
    assert variant_spec(spec, None) is spec


def test_shallow_and_non_bert_models_are_refused_with_a_hint() -> None:
    with pytest.raises(OrinprofError) as shallow:
        pruning_variants(models.get("bert-tiny"))
    assert "use a deeper model, e.g. bert-tiny[num_layers=4]" in shallow.value.one_line()
    with pytest.raises(OrinprofError) as gpt2:
        pruning_variants(models.get("gpt2-tiny"))
    assert "use a BERT preset" in gpt2.value.one_line()
