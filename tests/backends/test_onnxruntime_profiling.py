"""ONNX Runtime's profiling blocks: one profiler session spans a run's rounds.

ONNX Runtime's Python API cannot restart profiling on a session (``end_profiling`` ends it for good)
and a new session per round reloads and re-prepacks the model (≈ 0.5 s for bert-base on the 2-core
VM, per plan per round).  So the runner keeps one profiling session across ``profile_block`` calls
and splits its events by run when the rows are asked for (``finish_profiling``).  ORT records at most
1,000,000 events per session (``onnxruntime/core/common/profiler.cc``:
``Profiler::global_max_num_events_{1000 * 1000}``) and past that only logs a warning, so the runner
starts a new session before that cap, and a profile missing runs is an error, never a short block.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from orinprof.backends.base import RunnerOptions
from orinprof.backends.onnxruntime import runner as ort_runner
from orinprof.backends.onnxruntime.runner import OnnxRuntimeRunner, parse_profile
from orinprof.errors import OrinprofError

pytest.importorskip("onnxruntime")


def _model(path: Path) -> Path:
    rng = np.random.default_rng(0)
    w1 = helper.make_tensor("w1", TensorProto.FLOAT, (16, 32), rng.standard_normal((16, 32)).astype(np.float32).ravel())
    w2 = helper.make_tensor("w2", TensorProto.FLOAT, (32, 16), rng.standard_normal((32, 16)).astype(np.float32).ravel())
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w1"], ["h"], name="up"),
            helper.make_node("Relu", ["h"], ["r"], name="act"),
            helper.make_node("MatMul", ["r", "w2"], ["y"], name="down"),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, (4, 16))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, (4, 16))],
        initializer=[w1, w2],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


FEED = {"x": np.ones((4, 16), dtype=np.float32)}


@pytest.fixture
def profiling_sessions(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every profiling session the runner creates (sessions with ``enable_profiling``)."""
    import onnxruntime as ort

    made: list[Any] = []
    real = ort.InferenceSession

    def counting(path: str, options: Any = None, **kw: Any) -> Any:
        session = real(path, options, **kw)
        if options is not None and options.enable_profiling:
            made.append(session)
        return session

    monkeypatch.setattr(ort, "InferenceSession", counting)
    return made


def test_one_profiler_session_spans_the_later_blocks(tmp_path: Path, profiling_sessions: list[Any]) -> None:
    with OnnxRuntimeRunner(_model(tmp_path / "m.onnx"), RunnerOptions(threads=1)) as runner:
        for n in (2, 3, 4, 2, 2, 2):
            assert runner.profile_block(FEED, n) is None  # the rows come at the end
        frames = runner.finish_profiling()
    # the first session holds the first block (ORT writes its events, and so the events per run,
    # only when a session ends); the second one every later block, however many rounds there are
    assert len(profiling_sessions) == 2
    # one frame per block, in order, each with its own iterations (warm-up runs left out)
    assert [f["iteration"].nunique() for f in frames] == [2, 3, 4, 2, 2, 2]
    assert sorted(frames[2]["iteration"].unique().tolist()) == [0, 1, 2, 3]
    for frame in frames:
        assert set(frame["layer"]) >= {"up", "act", "down"}
        assert (frame["time_ms"] > 0).all()
        assert frame.groupby("iteration").size().nunique() == 1  # every iteration has every node


def test_finish_profiling_hands_over_each_block_once(tmp_path: Path) -> None:
    with OnnxRuntimeRunner(_model(tmp_path / "m.onnx"), RunnerOptions(threads=1)) as runner:
        runner.profile_block(FEED, 2)
        assert len(runner.finish_profiling()) == 1
        assert runner.finish_profiling() == []
        runner.profile_block(FEED, 3)  # a new session after the last one ended
        (frame,) = runner.finish_profiling()
        assert frame["iteration"].nunique() == 3


def test_profile_layers_still_returns_its_rows_at_once(tmp_path: Path) -> None:
    with OnnxRuntimeRunner(_model(tmp_path / "m.onnx"), RunnerOptions(threads=1)) as runner:
        runner.profile_block(FEED, 2)
        raw = runner.profile_layers(FEED, 3)
        assert raw["iteration"].nunique() == 3
        (pending,) = runner.finish_profiling()  # the block before it is not lost
        assert pending["iteration"].nunique() == 2


def test_a_new_session_starts_before_the_event_cap(
    tmp_path: Path, profiling_sessions: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 3 nodes + the session's own events per run: a cap of 60 events holds only a few runs
    monkeypatch.setattr(ort_runner, "PROFILER_EVENT_CAP", 60)
    with OnnxRuntimeRunner(_model(tmp_path / "m.onnx"), RunnerOptions(threads=1)) as runner:
        for _ in range(4):
            runner.profile_block(FEED, 3)
        frames = runner.finish_profiling()
    assert len(profiling_sessions) > 1
    assert [f["iteration"].nunique() for f in frames] == [3, 3, 3, 3]


def _events(runs: int, nodes: int = 2) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for k in range(runs):
        t = 1000 * k
        events.append({"cat": "Session", "name": "model_run", "ts": t, "dur": 900})
        for j in range(nodes):
            events.append({"cat": "Node", "name": f"n{j}_kernel_time", "ts": t + 10 + j, "dur": 5, "args": {}})
    return events


def test_parse_profile_takes_one_block_of_runs() -> None:
    df = parse_profile(_events(10), skip_runs=3, runs=4)
    assert sorted(df["iteration"].unique().tolist()) == [0, 1, 2, 3]
    assert len(df) == 8


def test_a_profile_missing_runs_is_an_error_not_a_short_block() -> None:
    # ORT stopped recording (its event cap) after 7 of the 10 runs the block needs
    with pytest.raises(OrinprofError, match=r"holds 7 runs, 10 were profiled"):
        parse_profile(_events(7), skip_runs=3, runs=7)


def test_the_profile_file_is_json_ort_wrote(tmp_path: Path) -> None:
    """The split reads what ORT wrote: ``model_run`` Session events and ``*_kernel_time`` Node events."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.enable_profiling = True
    so.profile_file_prefix = str(tmp_path / "p")
    session = ort.InferenceSession(str(_model(tmp_path / "m.onnx")), so, providers=["CPUExecutionProvider"])
    for _ in range(3):
        session.run(None, FEED)
    events = json.loads(Path(session.end_profiling()).read_text())
    assert sum(e.get("name") == "model_run" for e in events) == 3
    assert len(parse_profile(events, skip_runs=1, runs=2)) == 6
