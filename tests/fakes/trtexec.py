"""FAKE ``trtexec`` for tests: parses its arguments like the real one and writes files in the real
formats; builds nothing.  Version from ``FAKE_TRTEXEC_VERSION`` (e.g. ``10.3.0``); every argv is
appended to ``FAKE_TRTEXEC_CALLS`` (JSON lines) when set.  Install with :func:`install`.

Rules (sources: NVIDIA/TensorRT at the tag named; review = shared/reviews/tensorrt-first-contact.md):

1. Banner ``&&&& RUNNING TensorRT.trtexec [TensorRT v<N>] # <argv>`` on stdout, N =
   NV_TENSORRT_VERSION: ``major*1000+minor*100+patch`` on 8.x (TRT@v8.6.1:include/NvInferRuntimeBase.h:L76
   → kNV_TENSORRT_VERSION_IMPL), ``major*10000+minor*100+patch`` from 10.0
   (TRT@v10.3.0:include/NvInferRuntimeBase.h:L89-93); printed by reportTestStart
   (TRT@v10.3.0:samples/common/logging.h:L383,L491; trtexec.cpp:L219).
2. ``--help`` prints help and exits 0 (TRT@v10.3.0:samples/trtexec/trtexec.cpp:L225-227).
3. Unknown options: "Unknown option: <opt> <value>" and exit 1 (TRT@v10.3.0:samples/trtexec/trtexec.cpp:L242;
   TRT@v11.1:…:L378).  Option sets: ``--fp16``/``--int8`` exist up to 10.x
   (TRT@v10.3.0:samples/common/sampleOptions.cpp:L1226-1228) and are gone from BuildOptions in 11.x
   (TRT@v11.1:…sampleOptions.cpp has no "--fp16"; review B3); ``--stronglyTyped`` exists from 10.x
   (TRT@v10.3.0:…:L1231; absent at v8.6.1) and is a deprecated no-op in 11 (TRT@v11.1:…:L2752).
4. A static ONNX with ``--shapes``: "Static model does not take explicit shapes since the shape of
   inference tensors will be determined by the model itself" and exit 1
   (TRT@v10.3.0:samples/common/sampleEngines.cpp:L839-845, same at v8.6.1:L869-875, v11.1:L558-564; review B1).
5. Strong typing (11.x always, 10.x with ``--stronglyTyped``) follows the ONNX types; weak typing
   follows ``--fp16``/``--int8`` (see engine_model).  On 8.x a Q/DQ network needs ``--int8``.
6. ``--skipInference`` stops after the build; layer info is still exported
   (TRT@v10.3.0:samples/trtexec/trtexec.cpp:L376-384; TRT@v8.6.1:…/trtexec.cpp:L444-451).
   ``--buildOnly`` is the 8.6 deprecated alias (TRT@v8.6.1:samples/common/sampleOptions.cpp:L964-966).
7. ``--loadEngine`` of an engine from another TensorRT version fails at deserialization
   (review "Bad input"; the real message is the runtime's "Version tag does not match").
8. ``--exportTimes``: one record per timed iteration, warm-ups dropped, keys as in
   TRT@v10.3.0:samples/common/sampleReporting.cpp:L347-369.  ``--exportProfile``:
   ``[{"count": N}, {name,timeMs,averageMs,medianMs,percentage}…]`` (same file, L437-456).
9. ``--timingCacheFile``: read if present, written after the build (TRT@v10.3.0:…sampleOptions.cpp:L1434).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import onnx
from engine_model import BuildRules, engine_layers, has_qdq, is_dynamic

VALUE_OPTS = {
    "onnx",
    "saveEngine",
    "loadEngine",
    "exportProfile",
    "exportLayerInfo",
    "exportTimes",
    "profilingVerbosity",
    "warmUp",
    "iterations",
    "duration",
    "shapes",
    "useDLACore",
    "timingCacheFile",
    "memPoolSize",
    "minShapes",
    "optShapes",
    "maxShapes",
}
FLAG_OPTS = {
    "separateProfileRun",
    "noDataTransfers",
    "useSpinWait",
    "useCudaGraph",
    "allowGPUFallback",
    "skipInference",
    "help",
}


def accepted(major: int) -> tuple[set[str], set[str]]:
    flags = set(FLAG_OPTS)
    if major < 11:
        flags |= {"fp16", "int8"}
    if major >= 10:
        flags.add("stronglyTyped")
    if major < 10:
        flags.add("buildOnly")
    return set(VALUE_OPTS), flags


def version_code(major: int, minor: int, patch: int) -> int:
    return major * 1000 + minor * 100 + patch if major < 10 else major * 10000 + minor * 100 + patch


def fail(msg: str) -> None:
    print(f"[E] {msg}")
    print("&&&& FAILED TensorRT.trtexec")
    sys.exit(1)


def main(argv: list[str]) -> None:
    version = os.environ.get("FAKE_TRTEXEC_VERSION", "10.3.0")
    major, minor, patch = (int(x) for x in [*version.split("."), "0", "0"][:3])
    if os.environ.get("FAKE_TRTEXEC_CALLS"):
        with open(os.environ["FAKE_TRTEXEC_CALLS"], "a") as fh:
            fh.write(json.dumps(argv) + "\n")
    print(f"&&&& RUNNING TensorRT.trtexec [TensorRT v{version_code(major, minor, patch)}] # trtexec {' '.join(argv)}")
    values, flags = accepted(major)
    opts: dict[str, str] = {}
    unknown = []
    for arg in argv:
        key, sep, value = arg[2:].partition("=")
        if not arg.startswith("--") or (key not in values and key not in flags) or (key in values) != bool(sep):
            unknown.append(arg)
        else:
            opts[key] = value
    if "help" in opts or not argv:
        print("=== Model Options === (fake help)")
        print("&&&& PASSED TensorRT.trtexec")
        sys.exit(0)
    if unknown:
        print("=== Model Options === (fake help)")
        for arg in unknown:
            print(f"[E] Unknown option: {arg.split('=')[0]} ")
        print("&&&& FAILED TensorRT.trtexec")
        sys.exit(1)
    print(f"[I] TensorRT version: {major}.{minor}.{patch}")
    print("[I] Selected Device: Orin")

    if "onnx" in opts:
        model = onnx.load(opts["onnx"], load_external_data=False)
        dynamic = is_dynamic(model)
        if not dynamic and "shapes" in opts:
            print(
                "[E] Static model does not take explicit shapes since the shape of inference tensors will be "
                "determined by the model itself"
            )
            fail("Failed to parse onnx file")
        strongly = major >= 11 or "stronglyTyped" in opts
        if major < 10 and has_qdq(model) and "int8" not in opts:
            fail("Error[4]: Q/DQ networks require the INT8 builder flag (fake rule, quantization_path.md §2)")
        rules = BuildRules(major, strongly, fp16="fp16" in opts, int8="int8" in opts)
        info = engine_layers(model, rules)
        cache = opts.get("timingCacheFile")
        if cache:
            Path(cache).write_text(json.dumps({"fake_timing_cache": version}))
        engine = {"fake_engine_trt": version, "info": info, "dynamic": dynamic, "strongly_typed": strongly}
        if "saveEngine" in opts:
            Path(opts["saveEngine"]).write_text(json.dumps(engine))
        print("[I] Engine built in 1.0 sec.")
    elif "loadEngine" in opts:
        try:
            engine = json.loads(Path(opts["loadEngine"]).read_text())
        except (OSError, ValueError):
            fail(f"Error opening engine file: {opts['loadEngine']}")
        if engine.get("fake_engine_trt") != version:
            fail(
                "1: [stdArchiveReader.cpp::StdArchiveReader::32] Error Code 1: Serialization (Serialization "
                "assertion magicTagRead == kMAGIC_TAG failed.Version tag does not match.)"
            )
    else:
        fail("Model missing or format unsupported")

    info = engine["info"]
    if "exportLayerInfo" in opts:
        Path(opts["exportLayerInfo"]).write_text(json.dumps(info))
    if "skipInference" in opts or "buildOnly" in opts:
        print("[I] Skipped inference phase since --skipInference is added.")
        print("&&&& PASSED TensorRT.trtexec")
        return
    iterations = int(opts.get("iterations", "10"))
    per_layer = [0.01 * (1 + i % 3) for i in range(len(info["Layers"]))]
    total = sum(per_layer)
    if "exportTimes" in opts:
        records, t = [], 0.0
        for _ in range(iterations):
            rec = {
                "startEnqMs": t,
                "endEnqMs": t + 0.01,
                "startComputeMs": t,
                "endComputeMs": t + total,
                "startOutMs": t + total,
                "endOutMs": t + total,
                "inMs": 0.0,
                "computeMs": total,
                "outMs": 0.0,
                "latencyMs": total,
                "h2dMs": 0.0,
                "d2hMs": 0.0,
            }
            records.append(rec)
            t += total
        Path(opts["exportTimes"]).write_text(json.dumps(records))
    if "exportProfile" in opts:
        prof: list[dict] = [{"count": iterations}]
        for lay, ms in zip(info["Layers"], per_layer):
            prof.append(
                {
                    "name": lay["Name"],
                    "timeMs": ms * iterations,
                    "averageMs": ms,
                    "medianMs": ms,
                    "percentage": 100 * ms / total,
                }
            )
        Path(opts["exportProfile"]).write_text(json.dumps(prof))
    print("&&&& PASSED TensorRT.trtexec")


def install(bin_dir: Path, version: str, calls: Path | None = None) -> Path:
    """Write ``bin_dir/trtexec`` running this fake as TensorRT ``version``; return its path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "trtexec"
    env = f"FAKE_TRTEXEC_VERSION={version} " + (f"FAKE_TRTEXEC_CALLS={calls} " if calls else "")
    exe.write_text(f'#!/bin/sh\n{env}exec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    exe.chmod(0o755)
    return exe


if __name__ == "__main__":
    main(sys.argv[1:])
