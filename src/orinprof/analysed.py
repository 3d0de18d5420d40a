"""An ONNX model, analysed once: the file, its proto, its class map and its costs.

Built once per exported model (:meth:`AnalysedModel.load`) and once per plan file
(:meth:`AnalysedModel.derive`), then handed to the quantizer, the Q/DQ lint, attribution, the
roofline and the backends (TREx's "load once, analyse many").  The class map is computed on the
**source** graph only; plan files and runtime-optimised graphs inherit it by node identity
(:meth:`derive`, :meth:`runtime_classes`), so every plan of a comparison is attributed with the
same map.

Interface first (this module's internals are being completed): today ``derive`` and
``runtime_classes`` still re-classify; the inheritance by node identity replaces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import onnx
import pandas as pd

from orinprof import classify


@dataclass(frozen=True, eq=False)
class AnalysedModel:
    path: Path
    proto: onnx.ModelProto = field(repr=False)
    #: the ``layer_classes`` table: one row per node of this graph
    classes: pd.DataFrame = field(repr=False)
    #: the analysed model this one derives from (a plan file's source export); None for a source
    source: AnalysedModel | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: Path, *, save_map: bool = True) -> AnalysedModel:
        """Load and classify a source ONNX file (once); the map is saved beside it."""
        from orinprof.export import load_onnx

        proto = load_onnx(path)
        classes = classify.classify(proto)
        if save_map:
            out = classify.layer_map_path(path)
            tmp = out.with_suffix(".csv.tmp")
            classes.to_csv(tmp, index=False)
            tmp.replace(out)
        return cls(Path(path), proto, classes)

    def derive(self, path: Path) -> AnalysedModel:
        """A file derived from this model (a plan: Q/DQ or FP16 rewrite) with the class map
        inherited from this one."""
        from orinprof.export import load_onnx

        proto = load_onnx(path)
        return AnalysedModel(Path(path), proto, classify.classify(proto), source=self.root)

    @property
    def root(self) -> AnalysedModel:
        return self.source.root if self.source is not None else self

    def runtime_classes(self, graph: Path | onnx.ModelProto) -> pd.DataFrame:
        """The class map of a runtime-optimised graph (ONNX Runtime's) of this model: its nodes'
        classes inherited from this model's map; nodes that cannot be mapped are
        ``unattributed``."""
        proto = graph if isinstance(graph, onnx.ModelProto) else onnx.load(str(graph), load_external_data=False)
        return classify.classify(proto)

    @cached_property
    def costs(self) -> pd.DataFrame:
        """Per-node FLOPs and bytes (:func:`orinprof.costs.node_costs`)."""
        from orinprof.costs import node_costs

        return node_costs(self.proto)

    @cached_property
    def flops(self) -> dict[str, float]:
        """Node name → FLOPs (mixed engine layers are split by them)."""
        c = self.costs
        return dict(zip(c["node"], c["flops"].astype(float)))
