"""The precision plans: the one place that says which plans exist and which layer classes each
runs in INT8.  Every other module (quantizer, backends, roofline, results schema) derives its list
from :data:`PLANS`; nothing else spells the plan names out.

A plan says *what* runs in INT8 (per layer class); *how* a backend implements it (a TensorRT Q/DQ
layout, ONNX Runtime's dynamic quantization, W8A8 torch kernels) is that backend's recipe.
"""

from __future__ import annotations

from dataclasses import dataclass

from orinprof.errors import OrinprofError

#: every layer class a plan may quantize (the classifier's classes)
ALL_CLASSES = frozenset({"attention", "ffn", "other", "embedding", "norm"})


@dataclass(frozen=True)
class Plan:
    name: str
    int8_classes: frozenset[str]
    fp16: bool = False

    @property
    def is_int8(self) -> bool:
        return bool(self.int8_classes)

    def untouched(self, cls: str) -> bool:
        """True when this plan leaves layer class ``cls`` in the baseline precision (a placebo
        class of a comparison against the baseline)."""
        return cls not in self.int8_classes


PLANS: dict[str, Plan] = {
    "fp32": Plan("fp32", frozenset()),
    "fp16": Plan("fp16", frozenset(), fp16=True),
    "int8-attn": Plan("int8-attn", frozenset({"attention"})),
    "int8-ffn": Plan("int8-ffn", frozenset({"ffn"})),
    "int8-all": Plan("int8-all", ALL_CLASSES),
}

#: plan names in their canonical order (tables sort by it)
PLAN_NAMES: tuple[str, ...] = tuple(PLANS)
INT8_PLAN_NAMES: tuple[str, ...] = tuple(n for n, p in PLANS.items() if p.is_int8)


def get_plan(name: str) -> Plan:
    if name not in PLANS:
        raise OrinprofError(f"unknown precision plan {name!r}", "choose from: " + ", ".join(PLANS))
    return PLANS[name]


def parse_plans(text: str) -> list[Plan]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise OrinprofError("no precision plans given", "e.g. --precisions fp32,int8-attn")
    return [get_plan(n) for n in names]
