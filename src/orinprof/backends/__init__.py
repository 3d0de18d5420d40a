"""Backend registry: name → runner class path, and :func:`available` for ``orinprof doctor``.

Adding a backend = one folder with ``runner.py`` + one line in :data:`BACKENDS` + a ``probe``.
Nothing here imports a device library: probes use :func:`importlib.util.find_spec` or import
inside the probe function, and runner modules import their library inside ``activate_impl``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from orinprof.backends.base import Runner, RunnerOptions

#: name → "module:Class".  The module may import its device library only inside functions.
BACKENDS: dict[str, str] = {
    "onnxruntime": "orinprof.backends.onnxruntime.runner:OnnxRuntimeRunner",
    "tensorrt": "orinprof.backends.tensorrt.runner:TensorRTRunner",
    "trtexec": "orinprof.backends.trtexec.runner:TrtexecRunner",
    "torch": "orinprof.backends.torch.runner:TorchRunner",
}


@dataclass(frozen=True)
class Availability:
    name: str
    ok: bool
    reason: str


def runner_class(name: str) -> type[Runner]:
    from orinprof.errors import OrinprofError

    if name not in BACKENDS:
        raise OrinprofError(f"unknown backend {name!r}", "choose one of: " + ", ".join(BACKENDS))
    module_name, cls_name = BACKENDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise OrinprofError(f"backend {name!r} is not implemented in this install ({err})") from err
    cls: type[Runner] = getattr(module, cls_name)
    return cls


def make_runner(name: str, model_path, options: RunnerOptions | None = None) -> Runner:  # type: ignore[no-untyped-def]
    return runner_class(name)(model_path, options)


def available() -> list[Availability]:
    """Probe every backend (the only place that does)."""
    rows = []
    for name, target in BACKENDS.items():
        module_name = target.split(":")[0]
        try:
            module = importlib.import_module(module_name)
            probe = getattr(module, "probe", None)
            ok, reason = probe() if probe else (True, "")
        except ModuleNotFoundError as err:
            ok, reason = False, f"not implemented ({err.name})"
        rows.append(Availability(name, ok, reason))
    return rows
