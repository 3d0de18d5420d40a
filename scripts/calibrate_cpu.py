"""Add an INT8 GEMM rate to the local-cpu calibration (ONNX Runtime MatMulInteger, 1024³).

    python scripts/calibrate_cpu.py [--results-dir results]

`orinprof project --device local-cpu` measures the FP32 GEMM rate and copy bandwidth itself
(numpy); ONNX Runtime is a device library, so its INT8 measurement lives here, outside the package.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

from orinprof.devices import calibrate_cpu


def int8_gemm_ops(n: int = 1024, repeats: int = 5) -> float:
    import onnxruntime as ort

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
        "mmi",
        [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n]),
            helper.make_tensor_value_info("b", TensorProto.INT8, [n, n]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {
        "a": rng.integers(0, 255, (n, n), dtype=np.uint8),
        "b": rng.integers(-127, 127, (n, n), dtype=np.int8),
    }
    sess.run(None, feed)  # warm-up
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, feed)
        best = max(best, 2.0 * n**3 / (time.perf_counter() - t0))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    args = parser.parse_args()
    cache_dir = args.results_dir / "calibration"
    data = calibrate_cpu(cache_dir)
    import onnxruntime as ort

    data["int8_gemm_ops"] = int8_gemm_ops()
    data["int8_gemm_source"] = (
        f"onnxruntime {ort.__version__} MatMulInteger 1024³ (u8×s8→s32), best of 5 "
        f"({time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())})"
    )
    (cache_dir / "local-cpu.json").write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps({k: data[k] for k in ("fp32_gemm_flops", "int8_gemm_ops", "copy_bandwidth_bytes_s")}, indent=2))


if __name__ == "__main__":
    main()
