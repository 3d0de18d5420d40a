"""TensorRT feature detection: the one place that knows how the Python API differs by version.

Everything is detected with ``hasattr`` on the imported module, never assumed from the version
number alone, because flag *values* move between releases (``STRONGLY_TYPED`` is 2 in 9.x, 1 in
10.x and 0 in 11.x) and whole names disappear (``EXPLICIT_BATCH`` and the precision builder flags
are gone in 11.x).  Source: ``NVIDIA/TensorRT: include/NvInfer.h`` and ``python/src/infer/*.cpp``
at v8.6.1, v10.3.0 and v11.0, summarised in ``quantization_path.md`` §2.

The functions take the module as a parameter so tests can pass a fake ``tensorrt`` object.
"""

from __future__ import annotations

import importlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from orinprof.errors import OrinprofError

log = logging.getLogger(__name__)

#: Oldest release supported: 8.6 (JetPack 6.0).  JetPack 5's 8.5.2 is not supported: its Python 3.8
#: cannot install orinprof, and its ``trt.nptype`` uses ``np.bool``, removed in numpy 1.24
#: (``TRT@8.5.2:python/packaging/tensorrt/__init__.py:L161-168``; review B4).
VERSION_MIN = (8, 6)
#: kept for callers of the old name: the floor and the minimum are now the same release
VERSION_FLOOR = VERSION_MIN

INSTALL_HINT = (
    "on Jetson (JetPack): sudo apt install python3-libnvinfer, then create the venv with "
    "--system-site-packages; on a desktop GPU: pip install tensorrt (orinprof never installs it)"
)


@dataclass(frozen=True)
class TrtFeatures:
    """What the installed TensorRT Python API offers.  Built by :func:`detect_features`."""

    version: str
    major: int
    minor: int
    #: bit to OR into ``create_network(flags)`` for explicit batch; 0 where it is not needed (≥ 10)
    explicit_batch_bit: int
    #: bit for ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``; None where the flag does not exist
    strongly_typed_bit: int | None
    #: 11.x: every network is strongly typed, weak typing APIs are removed
    strongly_typed_required: bool
    has_fp16_flag: bool
    has_int8_flag: bool
    has_obey_precision_constraints: bool
    #: ``Builder.platform_has_fast_int8``: deprecated in 10.5, removed in 11.0 (informative only)
    has_platform_has_fast_int8: bool
    has_memory_pool_limit: bool
    has_execute_async_v3: bool
    has_engine_inspector: bool
    has_profiler: bool
    #: ONNX node names in layer Metadata (parser 8.6+)
    has_layer_metadata: bool

    @property
    def weak_typing_available(self) -> bool:
        return self.has_fp16_flag and not self.strongly_typed_required


def parse_version(text: str) -> tuple[int, int]:
    match = re.match(r"\s*(\d+)\.(\d+)", str(text))
    if not match:
        raise OrinprofError(f"cannot read the TensorRT version {text!r}", "reinstall TensorRT")
    return int(match.group(1)), int(match.group(2))


def import_tensorrt() -> Any:
    """Import ``tensorrt`` or fail with the install routes; also enforce the version floor."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError as err:  # also catches a broken install (missing libnvinfer.so)
        raise OrinprofError(f"TensorRT's Python package is not importable ({err})", INSTALL_HINT) from err
    check_version(trt)
    return trt


def check_version(trt: Any) -> tuple[int, int]:
    version = getattr(trt, "__version__", "")
    major, minor = parse_version(version)
    if (major, minor) < VERSION_MIN:
        raise OrinprofError(
            f"TensorRT {version} is too old for orinprof (need ≥ {VERSION_MIN[0]}.{VERSION_MIN[1]}; "
            "JetPack 5 is unsupported)",
            "flash JetPack 6.x (TensorRT 8.6/10.3), or profile on the CPU with --backend onnxruntime",
        )
    return major, minor


def detect_features(trt: Any) -> TrtFeatures:
    """Inspect ``trt`` (the real module or a fake with the same attribute layout)."""
    version = str(getattr(trt, "__version__", ""))
    major, minor = check_version(trt)
    creation: Any = getattr(trt, "NetworkDefinitionCreationFlag", None)
    builder_flag: Any = getattr(trt, "BuilderFlag", None)

    # EXPLICIT_BATCH is required by the ONNX parser before 10.0, ignored in 10.x, absent in 11.x.
    explicit_batch_bit = 0
    if major < 10 and hasattr(creation, "EXPLICIT_BATCH"):
        explicit_batch_bit = 1 << int(creation.EXPLICIT_BATCH)

    strongly_typed_bit = None
    if hasattr(creation, "STRONGLY_TYPED"):
        strongly_typed_bit = 1 << int(creation.STRONGLY_TYPED)

    fp16 = hasattr(builder_flag, "FP16")
    int8 = hasattr(builder_flag, "INT8")
    return TrtFeatures(
        version=version,
        major=major,
        minor=minor,
        explicit_batch_bit=explicit_batch_bit,
        strongly_typed_bit=strongly_typed_bit,
        # 11.x removed the precision flags: nothing but strong typing can build there
        strongly_typed_required=major >= 11 or not (fp16 or int8),
        has_fp16_flag=fp16,
        has_int8_flag=int8,
        has_obey_precision_constraints=hasattr(builder_flag, "OBEY_PRECISION_CONSTRAINTS"),
        has_platform_has_fast_int8=hasattr(getattr(trt, "Builder", None), "platform_has_fast_int8"),
        has_memory_pool_limit=hasattr(getattr(trt, "IBuilderConfig", None), "set_memory_pool_limit"),
        has_execute_async_v3=hasattr(getattr(trt, "IExecutionContext", None), "execute_async_v3"),
        has_engine_inspector=hasattr(getattr(trt, "ICudaEngine", None), "create_engine_inspector"),
        has_profiler=hasattr(trt, "IProfiler"),
        has_layer_metadata=(major, minor) >= (8, 6),
    )


@dataclass(frozen=True)
class TypingPlan:
    """How to build one precision plan on this TensorRT: network flags and builder flags."""

    strongly_typed: bool
    network_flags: int
    builder_flags: tuple[str, ...]  # names in trt.BuilderFlag


#: builder flags for weakly typed builds.  Q/DQ plans need INT8 (8.x: "Q/DQ networks must be built
#: with the INT8-precision builder flag") plus FP16 so non-quantized layers fall back to FP16, not FP32.
_WEAK_FLAGS = {
    "fp32": (),
    "fp16": ("FP16",),
    "int8-attn": ("FP16", "INT8"),
    "int8-ffn": ("FP16", "INT8"),
    "int8-all": ("FP16", "INT8"),
}


def plan_typing(features: TrtFeatures, precision: str, strongly_typed: bool | None = None) -> TypingPlan:
    """Choose weak or strong typing for ``precision``.

    ``strongly_typed=None`` means: weak typing where the version still has the precision flags
    (portable from 8.6 to 10.x), strong typing where it is required (11.x).  With strong typing
    no precision flag is set: the ONNX must already be FP16 outside the Q/DQ islands.
    """
    if precision not in _WEAK_FLAGS:
        raise OrinprofError(f"unknown precision {precision!r}", "choose one of: " + ", ".join(_WEAK_FLAGS))
    want_strong = features.strongly_typed_required if strongly_typed is None else strongly_typed
    if features.strongly_typed_required and not want_strong:
        raise OrinprofError(
            f"TensorRT {features.version} builds only strongly typed networks",
            "leave strongly_typed unset (weak typing does not exist in TensorRT 11)",
        )
    flags = features.explicit_batch_bit
    if want_strong:
        if features.strongly_typed_required:
            # 11.x: strong typing is implicit; the deprecated flag (if present) is ignored but harmless
            return TypingPlan(True, flags | (features.strongly_typed_bit or 0), ())
        if features.strongly_typed_bit is None:
            raise OrinprofError(
                f"TensorRT {features.version} has no strongly typed networks (added in 9.1/10.0)",
                "build weakly typed (the default) or upgrade TensorRT",
            )
        flags |= features.strongly_typed_bit
        return TypingPlan(True, flags, ())
    needed = _WEAK_FLAGS[precision]
    missing = [f for f in needed if not getattr(features, f"has_{f.lower()}_flag")]
    if missing:
        raise OrinprofError(
            f"TensorRT {features.version} lacks BuilderFlag {', '.join(missing)}", "build strongly typed"
        )
    return TypingPlan(False, flags, needed)
