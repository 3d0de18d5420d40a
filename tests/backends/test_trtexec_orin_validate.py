"""``scripts/orin_validate.sh --dry-run`` runs here (no Jetson, no TensorRT): it must exit 0, find the
plans where ``orinprof export`` writes them (``models/<preset>/``; review B5), install with the
numpy < 2 constraint (M6), pin cuda-python to the JetPack's CUDA (B6), and print every command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from orinprof.measure import ProfileConfig, prepare

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "orin_validate.sh"

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("repo")
    (root / "scripts").mkdir()
    shutil.copy(SCRIPT, root / "scripts" / "orin_validate.sh")
    # the layout `orinprof export` writes: models/<preset>/b…_s…_op…_seed….<plan>….onnx
    prepare(
        ProfileConfig(
            model="bert-tiny",
            seq_lens=(16,),
            precisions=("fp32", "fp16", "int8-attn"),
            calib_batches=2,
            models_dir=root / "models",
        )
    )
    env = {
        **os.environ,
        "MODEL": "bert-tiny",
        "PYTHONPATH": str(REPO / "src"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "RESULTS": str(root / "results"),
    }
    proc = subprocess.run(
        ["bash", str(root / "scripts" / "orin_validate.sh"), "--dry-run"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (root / "results").exists() and not (root / ".venv-orin").exists()  # nothing ran
    return proc.stdout


def test_dry_run_finds_the_exported_plans(dry_run: str) -> None:
    plans = [ln.strip() for ln in dry_run.splitlines() if ln.strip().startswith("models/bert-tiny/")]
    assert any(p.endswith(".fp16.onnx") for p in plans) and any(".int8-attn." in p for p in plans)
    assert any(
        ln.startswith("+ orinprof lint-qdq models/bert-tiny/") and "int8-attn" in ln for ln in dry_run.splitlines()
    )


def test_dry_run_prints_install_with_numpy_constraint_and_cuda_pin(dry_run: str) -> None:
    assert '+ echo "numpy<2"' in dry_run
    assert any(ln.startswith("+ python -m pip install -c ") and "-e .[ort,jetson]" in ln for ln in dry_run.splitlines())
    assert "+ python -m pip install -c " in dry_run and "cuda-python==12." in dry_run
    assert "pycuda" in dry_run and "/usr/local/cuda/bin" in dry_run


def test_dry_run_prints_both_backends_and_builder_settings(dry_run: str) -> None:
    for backend in ("tensorrt", "trtexec"):
        assert f"--backend {backend} --cuda-graph" in dry_run
    assert "int8-attn  8.6/10.3 (weak): --fp16 --int8  11.x (strong): refused (FP32 Q/DQ)" in dry_run
    assert "fp16       8.6/10.3 (weak): --fp16         11.x (strong): no flags" in dry_run
    assert max(len(ln) for ln in dry_run.splitlines() if "(weak)" in ln) <= 80
    assert "--timingCacheFile" in dry_run and "--loadEngine" in dry_run
    for check in ("1. cuda-python probe", "2. fused_mha", "3. {ForeignNode", "4. numpy"):
        assert check in dry_run
    assert "tar czf" in dry_run


def test_unknown_argument_is_refused() -> None:
    proc = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown argument" in proc.stderr
