"""trtexec JSON readers and engine-layer → ONNX mapping, on every recorded fixture as it is.

Expected values are derived from the fixture files themselves (read with ``json`` here), never
typed in, except where the fixtures README states a property (1:1 name match of the pairs)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper

from conftest import FIXTURES
from orinprof import trt_formats as parse
from orinprof.errors import OrinprofError
from orinprof.ingest import trtexec as ingest

FIX = FIXTURES
TREX = FIX / "trex"
CONTROLNET = FIX / "trt2023_controlnet_fp16"

PROFILES = [*sorted(TREX.glob("*/*.engine.profile.json")), CONTROLNET / "profile.json"]
LAYER_INFOS = [*sorted(TREX.glob("*/*.engine.graph.json")), CONTROLNET / "layerinfo.json"]
#: profile ↔ layer-info pairs whose names the fixtures README says match 1:1, in order
PAIRS = [(p, p.with_name(p.name.replace(".profile.json", ".graph.json"))) for p in PROFILES[:-1]] + [
    (CONTROLNET / "profile.json", CONTROLNET / "layerinfo.json")
]
PROFILE_META = sorted(TREX.glob("*/*.profile.metadata.json"))
BUILD_META = sorted(TREX.glob("*/*.build.metadata.json"))
TIMES = sorted(TREX.glob("*/*.timing.json"))


def _ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.name}" for p in paths]


def _load(path: Path) -> object:
    return json.loads(path.read_text(), strict=False)


def test_every_fixture_file_is_covered() -> None:
    # a new fixture file must get a reader test: all JSON files are one of the kinds above
    jsons = set(TREX.glob("*/*.json")) | set(CONTROLNET.glob("*.json"))
    covered = set(PROFILES) | set(LAYER_INFOS) | set(PROFILE_META) | set(BUILD_META) | set(TIMES)
    assert jsons and jsons == covered


# --------------------------------------------------------------------------- --exportProfile


@pytest.mark.parametrize("path", PROFILES, ids=_ids(PROFILES))
def test_profile_records_match_file(path: Path) -> None:
    data = _load(path)
    assert isinstance(data, list)
    header = data[0] if set(data[0]) == {"count"} else None
    records = data[1:] if header else data
    prof = parse.read_profile(path)
    assert prof.count == (header["count"] if header else None)
    assert len(prof.records) == len(records)
    assert prof.records["name"].tolist() == [r["name"] for r in records]
    assert prof.has_median == all("medianMs" in r for r in records)
    # percentage is each layer's share of the summed time: the averages must reproduce it
    avg = prof.records["average_ms"].to_numpy()
    assert np.allclose(prof.records["percentage"], 100 * avg / avg.sum(), atol=1e-3)
    assert prof.records["percentage"].sum() == pytest.approx(100, abs=1e-2)
    zero = [r["averageMs"] == 0 for r in records]
    assert (prof.records["status"] == "zero_time").tolist() == zero


def test_four_key_profile_keeps_median_missing() -> None:
    # the pre-8.4 record layout (no medianMs), as in the legacy Jetson/DLA excerpt of the reference notes
    text = """[
  { "count" : 11290 }
, { "name" : "data to nvm", "timeMs" : 407.775, "averageMs" : 0.0361183, "percentage" : 1.00385 }
, { "name" : "{conv1/7x7_s2,conv1/relu}", "timeMs" : 2000.61, "averageMs" : 0.177202, "percentage" : 4.925 }
]"""
    prof = parse.parse_profile(json.loads(text))
    assert prof.count == 11290 and not prof.has_median
    assert prof.records["median_ms"].isna().all()
    raw = parse.build_raw_profile(prof)
    assert raw["time_ms"].tolist() == prof.records["average_ms"].tolist()  # mean used, median not invented


def test_profile_without_count_header() -> None:
    prof = parse.parse_profile([{"name": "a", "timeMs": 1.0, "averageMs": 1.0, "percentage": 100.0}])
    assert prof.count is None and len(prof.records) == 1
    raw = parse.build_raw_profile(prof)
    assert raw["calls"].isna().all()  # unknown stays missing, not 0


def test_profile_with_unescaped_quote_in_name(tmp_path: Path) -> None:
    # trtexec streams names without JSON escaping; a `"` makes the file invalid JSON
    path = tmp_path / "p.json"
    path.write_text(
        '[\n  { "count" : 2 }\n, { "name" : "odd "quoted" \\layer", "timeMs" : 2, "averageMs" : 1, '
        '"medianMs" : 1, "percentage" : 100 }\n]\n'
    )
    prof = parse.read_profile(path)
    assert prof.count == 2
    assert prof.records["name"].tolist() == ['odd "quoted" \\layer']


@pytest.mark.parametrize(
    ("content", "found"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("not json at all", "invalid JSON"),
        ('{"Layers": []}', "object with keys Layers"),
        ("[1, 2, 3]", "record 1"),
        ('[{"count": 3}]', "no layer records"),
        ('[{"count": 1}, {"name": "x", "timeMs": 1}]', "expected keys"),
    ],
)
def test_profile_bad_input(tmp_path: Path, content: str, found: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(OrinprofError) as err:
        parse.read_profile(path)
    line = err.value.one_line()
    assert str(path) in line and "not a trtexec --exportProfile file" in line and found in line
    assert "\n" not in line


def test_missing_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(OrinprofError, match="cannot read"):
        parse.read_profile(tmp_path / "nope.json")


# --------------------------------------------------------------------------- --exportLayerInfo


@pytest.mark.parametrize("path", LAYER_INFOS, ids=_ids(LAYER_INFOS))
def test_layer_info_matches_file(path: Path) -> None:
    data = _load(path)
    assert isinstance(data, dict)
    info = parse.read_layer_info(path)
    assert info.detailed
    assert len(info.layers) == len(data["Layers"])
    assert info.layers["name"].tolist() == [layer["Name"] for layer in data["Layers"]]
    assert info.bindings == tuple(data["Bindings"])
    # output precision is int8 exactly where the file's first output format says Int8
    says_int8 = ["int8" in layer["Outputs"][0]["Format/Datatype"].lower() for layer in data["Layers"]]
    assert (info.layers["precision_out"] == "int8").tolist() == says_int8
    says_fp16 = [any(k in layer["Outputs"][0]["Format/Datatype"] for k in ("FP16", "Half")) for layer in data["Layers"]]
    assert (info.layers["precision_out"] == "fp16").tolist() == says_fp16
    # every layer with a typed output got a precision
    assert (info.layers["precision_out"] != "").all()


@pytest.mark.parametrize("path", [p for p in LAYER_INFOS if "qat" in p.name], ids=lambda p: p.name)
def test_qat_engines_have_int8_layers(path: Path) -> None:
    info = parse.read_layer_info(path)
    assert "int8" in set(info.layers["precision_out"]) | set(info.layers["precision_in"])


@pytest.mark.parametrize("path", BUILD_META, ids=_ids(BUILD_META))
def test_build_precision_agrees_with_layer_precisions(path: Path) -> None:
    build = parse.read_trex_build_metadata(path)
    assert build.precision.startswith("FP32")
    graph = path.with_name(path.name.replace(".build.metadata.json", ".graph.json"))
    if not graph.exists():  # the RTX 3090 folder has a timing trace, no layer info
        return
    seen = set(parse.read_layer_info(graph).layers["precision_out"])
    assert ("INT8" in build.precision) == ("int8" in seen)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Int8", "int8"),
        ("Half", "fp16"),
        ("Float", "fp32"),
        ("Channel major FP16 format where channel % 8 == 0", "fp16"),
        ("Row major linear FP32", "fp32"),
        ("Four wide channel vectorized row major Int8 format", "int8"),
        ("Row major linear Int32", "int32"),
        ("Row major linear BF16 format", "bf16"),
        ("", ""),
        ("Something new", ""),
    ],
)
def test_format_precision(text: str, expected: str) -> None:
    assert parse.format_precision(text) == expected


NAMES_ONLY = [
    "Reformatting CopyNode for Input Tensor 0 to {ForeignNode[/m/Expand_20...layers.0/cross_attn/Add]}",
    "dummy_shape_call__mye33929_0_myl109_0",
    "/model/decoder/decoder/layers_0/self_attn/MatMul_1+/model/decoder/decoder/layers_0/self_attn/MatMul_myl109_45",
    "_gemm_mha_v2_myl109_47",
    "exit^bb^signal^1_myl109_56",
]


@pytest.mark.parametrize("data", [{"Layers": NAMES_ONLY, "Bindings": ["in", "out"]}, NAMES_ONLY])
def test_names_only_layer_info_object_and_array_rooted(data: object) -> None:
    info = parse.parse_layer_info(data)
    assert not info.detailed
    assert info.layers["name"].tolist() == NAMES_ONLY
    assert (info.layers["precision_out"] == "").all()


@pytest.mark.parametrize(
    ("content", "found"),
    [
        ("", "empty"),
        ("{oops", "invalid JSON"),
        ('"x"', "JSON str"),
        ('{"Layers": []}', "no layers"),
        ("[1]", "layer 1"),
    ],
)
def test_layer_info_bad_input(tmp_path: Path, content: str, found: str) -> None:
    path = tmp_path / "l.json"
    path.write_text(content)
    with pytest.raises(OrinprofError, match="not a trtexec --exportLayerInfo file") as err:
        parse.read_layer_info(path)
    assert found in err.value.one_line()


# --------------------------------------------------------------------------- join and mapping on real pairs


@pytest.mark.parametrize(("profile", "layers"), PAIRS, ids=_ids([p for p, _ in PAIRS]))
def test_profile_and_layer_info_join_one_to_one(profile: Path, layers: Path) -> None:
    prof, info = parse.read_profile(profile), parse.read_layer_info(layers)
    raw = parse.build_raw_profile(prof, info)
    assert raw.attrs["join"] == "position"
    assert raw["layer"].tolist() == info.layers["name"].tolist()
    assert raw["op_type"].tolist() == info.layers["layer_type"].tolist()
    assert (raw["iteration"] == 0).all() and (raw["calls"] == prof.count).all()
    assert raw["time_ms"].tolist() == prof.records["median_ms"].tolist()


def test_join_by_name_when_counts_differ(caplog: pytest.LogCaptureFixture) -> None:
    prof = parse.read_profile(PAIRS[0][0])
    info = parse.read_layer_info(PAIRS[0][1])
    partial = parse.EngineLayers(info.source, True, info.layers.iloc[::2].reset_index(drop=True), info.bindings)
    raw = parse.build_raw_profile(prof, partial)
    assert raw.attrs["join"] == "name" and "joining by name" in caplog.text
    assert len(raw) == len(prof.records)
    known = set(partial.layers["name"])
    # engine facts only for the layers the partial layer info has
    assert ((raw["precision_out"] != "") == raw["layer"].isin(known)).all()


def test_controlnet_foreign_nodes_are_fused_unattributed_with_their_share() -> None:
    records = _load(CONTROLNET / "profile.json")[1:]  # type: ignore[index]
    foreign = {r["name"] for r in records if r["name"].startswith("{ForeignNode[")}
    assert foreign
    expected_share = sum(r["medianMs"] for r in records if r["name"] in foreign) / sum(r["medianMs"] for r in records)
    result = ingest.ingest_trtexec(CONTROLNET / "profile.json", CONTROLNET / "layerinfo.json")
    raw = result.raw
    unattributed = raw[raw["mapping"] == "fused-unattributed"]
    assert set(unattributed["layer"]) == foreign
    assert (unattributed["status"] == "fused-unattributed").all()
    assert (unattributed["onnx_nodes"] == "").all()
    layers = result.layers
    fu = layers[layers["layer_class"] == "fused-unattributed"]
    assert set(fu["layer"]) == foreign
    assert fu["share"].sum() == pytest.approx(expected_share, rel=1e-6)
    assert result.myelin_regions == len(foreign)
    assert not result.fused_mha  # TRT 8.6 hides any MHA kernel inside the opaque regions


def test_reformat_layers_are_reformat_not_other() -> None:
    """m13: the profile path of measure skipped ingest's post-pass, so reformats became "other"."""
    from orinprof.attribute import attribute_layers

    raw = parse.build_raw_profile(
        parse.read_profile(CONTROLNET / "profile.json"), parse.read_layer_info(CONTROLNET / "layerinfo.json")
    )
    reformats = raw[raw["layer"].str.startswith("Reformatting CopyNode")]
    assert len(reformats) and (reformats["status"] == "reformat").all()
    layers = attribute_layers(raw, None, None).set_index("layer")  # what measure calls, no post-pass
    assert (layers.loc[reformats["layer"], "layer_class"] == "reformat").all()


def test_controlnet_metadata_split_on_record_separator() -> None:
    data = _load(CONTROLNET / "layerinfo.json")
    layers = [layer for layer in data["Layers"] if "\x1e" in (layer.get("Metadata") or "")]  # type: ignore[index]
    assert layers
    raw = parse.build_raw_profile(
        parse.read_profile(CONTROLNET / "profile.json"), parse.read_layer_info(CONTROLNET / "layerinfo.json")
    ).set_index("layer")
    for layer in layers:
        meta = layer["Metadata"]
        nodes = parse.split_metadata(meta)
        # some entries end with a trailing separator: count the non-empty pieces
        assert len(nodes) == meta.count("[ONNX Layer: ") == len([p for p in meta.split("\x1e") if p])
        assert all(f"[ONNX Layer: {n}]" in meta for n in nodes)
        assert raw.loc[layer["Name"], "onnx_nodes"] == ";".join(nodes)
        assert raw.loc[layer["Name"], "mapping"] == "metadata"


def test_reformat_layers_are_classed_reformat() -> None:
    result = ingest.ingest_trtexec(CONTROLNET / "profile.json", CONTROLNET / "layerinfo.json")
    is_reformat = result.raw["layer"].str.startswith("Reformatting CopyNode for ")
    assert is_reformat.any()
    assert (result.layers.loc[is_reformat, "layer_class"] == "reformat").all()


# --------------------------------------------------------------------------- --exportTimes and TREx summaries


@pytest.mark.parametrize("path", TIMES, ids=_ids(TIMES))
def test_times_match_file_and_trex_summary(path: Path) -> None:
    data = _load(path)
    trace = parse.read_times(path)
    assert len(trace) == len(data)  # type: ignore[arg-type]
    assert trace["latency_ms"].tolist() == [r["latencyMs"] for r in data]  # type: ignore[union-attr]
    meta = parse.read_trex_profile_metadata(path.with_name(path.name.replace(".timing.json", ".profile.metadata.json")))
    gpu = meta.metrics["GPU Compute Time"]
    # both come from the same trtexec run: its summary median/min are the trace's
    assert float(np.median(trace["compute_ms"])) == pytest.approx(gpu.median_ms, rel=1e-4)
    assert float(trace["compute_ms"].min()) == pytest.approx(gpu.min_ms, rel=1e-4)
    # --noDataTransfers: no copies, so latency is compute time
    if meta.inference_options.get("Data transfers") == "Disabled":
        assert (trace["h2d_ms"] == 0).all() and np.allclose(trace["latency_ms"], trace["compute_ms"])


@pytest.mark.parametrize("path", PROFILE_META, ids=_ids(PROFILE_META))
def test_trex_profile_metadata(path: Path) -> None:
    data = _load(path)
    meta = parse.read_trex_profile_metadata(path)
    arrays = {k: v for k, v in data["performance_summary"].items() if isinstance(v, list)}  # type: ignore[index]
    assert set(meta.metrics) == set(arrays)
    for name, values in arrays.items():
        m = meta.metrics[name]
        assert (m.min_ms, m.max_ms, m.mean_ms, m.median_ms) == tuple(values[:4])
        assert set(m.percentiles) == ({99} if len(values) == 5 else {90, 95, 99})
        assert m.min_ms <= m.median_ms <= m.max_ms
    assert meta.device["Selected Device"] == data["device_information"]["Selected Device"]  # type: ignore[index]


def test_trex_summary_wrong_length(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"performance_summary": {"Latency": [1, 2, 3]}}))
    with pytest.raises(OrinprofError, match="3 values"):
        parse.read_trex_profile_metadata(path)


@pytest.mark.parametrize("content", ["", "[]", '[{"latencyMs": 1}]', "{}"])
def test_times_bad_input(tmp_path: Path, content: str) -> None:
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(OrinprofError, match="not a trtexec --exportTimes file"):
        parse.read_times(path)


# --------------------------------------------------------------------------- names and metadata


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("", []),
        ("[ONNX Layer: /a/MatMul]", ["/a/MatMul"]),
        ("[ONNX Layer: /a]\x1e[ONNX Layer: /b]", ["/a", "/b"]),
        (
            "[ONNX Layer: /fc1/Gemm]\x1f[ONNX Layer: /q/DequantizeLinear]",
            ["/fc1/Gemm", "/q/DequantizeLinear"],
        ),
        ("[ONNX Layer: /x/MatMul][ONNX Layer: /y/MatMul]", ["/x/MatMul", "/y/MatMul"]),
        ("[ONNX Layer: /f/Add | Local Function: Block]\x1e[ONNX Layer: /g | a | b]", ["/f/Add", "/g"]),
        ("[ONNX Layer: /a]\x1e[ONNX Layer: /trunc", ["/a"]),  # cut at 4000 characters
        ("[ONNX Layer: /a]\x1e[ONNX Layer: /a]", ["/a"]),
    ],
)
def test_split_metadata_table(metadata: str, expected: list[str]) -> None:
    assert parse.split_metadata(metadata) == expected


_NODE = st.text(
    alphabet=st.characters(blacklist_characters="]|\x1e\x1f", blacklist_categories=("Cs", "Cc", "Zs")),
    min_size=1,
    max_size=30,
)


@given(
    st.lists(_NODE, min_size=1, max_size=6, unique=True),
    st.lists(st.sampled_from(["\x1e", "\x1f", ""]), min_size=6, max_size=6),
)
def test_split_metadata_round_trip(nodes: list[str], seps: list[str]) -> None:
    text = "[ONNX Layer: " + nodes[0] + "]"
    for sep, node in zip(seps, nodes[1:], strict=False):
        text += sep + "[ONNX Layer: " + node + "]"
    assert parse.split_metadata(text) == [n.strip() for n in nodes if n.strip()] or not any(n.strip() for n in nodes)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("/encoder/layers.0/attn/MatMul", "/encoder/layers_0/attn/MatMul"),
        ("/encoder/layers.2/mha/attn/value/MatMul", "/encoder/layers_2/mha/attn/value/MatMul_myl0_16"),
        ("/model/decoder/layers.0/self_attn/Gemm", "/model/decoder/layers_0/self_attn/Gemm_myl109_49"),
    ],
)
def test_normalize_name_equates(a: str, b: str) -> None:
    assert parse.normalize_name(a) == parse.normalize_name(b)


def test_normalize_name_keeps_distinct_nodes_apart() -> None:
    assert parse.normalize_name("/l.0/MatMul") != parse.normalize_name("/l.0/MatMul_1")
    assert parse.normalize_name("/a/MatMul_myl") == "/a/MatMul_myl"  # not a Myelin suffix


@given(st.text(max_size=40))
def test_normalize_name_is_idempotent(name: str) -> None:
    once = parse.normalize_name(name)
    assert "." not in once and parse.normalize_name(once) == once


# --------------------------------------------------------------------------- match_onnx_nodes


def _bert_like_onnx_names() -> list[str]:
    nodes = []
    for i in range(2):
        for op in ("MatMul", "Add", "Softmax", "MatMul_1", "Gemm_ffn"):
            nodes.append(helper.make_node("Identity", ["x"], ["y"], name=f"/encoder/layers.{i}/attn/{op}"))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph)
    return [n.name for n in model.graph.node]


def test_onnx_node_order_reads_graph(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"], name="first"), helper.make_node("Relu", ["a"], ["y"])],
        "g",
        [x],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert parse.onnx_node_order(path) == ["first", "Relu_1"]
    (tmp_path / "bad.onnx").write_text("not onnx")
    with pytest.raises(OrinprofError, match="not a readable ONNX"):
        parse.onnx_node_order(tmp_path / "bad.onnx")


def test_match_prefers_metadata_and_normalises() -> None:
    names = _bert_like_onnx_names()
    nodes, status = parse.match_onnx_nodes(
        "/encoder/layers_0/attn/MatMul_myl0_3", ["/encoder/layers.0/attn/MatMul"], names
    )
    assert (nodes, status) == (["/encoder/layers.0/attn/MatMul"], "metadata")
    # without Metadata the TRT 10 Myelin name (layers_0, _myl suffix) still resolves against the ONNX
    nodes, status = parse.match_onnx_nodes("/encoder/layers_1/attn/MatMul+/encoder/layers_1/attn/Add_myl0_9", [], names)
    assert (nodes, status) == (["/encoder/layers.1/attn/MatMul", "/encoder/layers.1/attn/Add"], "name")


def test_match_foreign_node_range_over_onnx_order() -> None:
    names = _bert_like_onnx_names()
    layer = "{ForeignNode[/encoder/layers.0/attn/Add + (Unnamed Layer* 3) [Shuffle].../encoder/layers.1/attn/MatMul]}"
    nodes, status = parse.match_onnx_nodes(layer, [], names)
    assert status == "range"
    assert nodes == names[names.index("/encoder/layers.0/attn/Add") : names.index("/encoder/layers.1/attn/MatMul") + 1]
    assert parse.match_onnx_nodes(layer, [], None) == ([], "fused-unattributed")
    assert parse.match_onnx_nodes("{ForeignNode[/nope...x]}", [], names) == ([], "fused-unattributed")


@pytest.mark.parametrize(
    ("name", "status", "nodes"),
    [
        ("Reformatting CopyNode for Input Tensor 0 to Conv_0 + Relu_1", "reformat", []),
        ("Reformatting CopyNode for Output Tensor 1 to {ForeignNode[a...b]}", "reformat", []),
        ("Conv_0 + Relu_1", "name", ["Conv_0", "Relu_1"]),
        ("PWN(PWN(/b/Sigmoid), /b/Mul)", "name", ["/b/Sigmoid", "/b/Mul"]),
        ("/c/Conv + PWN(PWN(/b/Sigmoid), /b/Mul)", "name", ["/c/Conv", "/b/Sigmoid", "/b/Mul"]),
        ("/a/Gemm || /b/Gemm", "name", ["/a/Gemm", "/b/Gemm"]),
        ("(Unnamed Layer* 3086) [Shuffle] + /m/Reshape_1", "name", ["/m/Reshape_1"]),
        ("reshape_after_/t/Gemm", "name", ["/t/Gemm"]),
        ("dummy_shape_call__mye33929_0_myl109_0", "aux", []),
        ("exit^bb^signal^1_myl109_56", "aux", []),
        ("exit^bb^wait^1_myl109_57", "aux", []),
        ("__myl_AddCasMeaSubMulMeaAddSqrDivMulCasMulAddAdd_myl109_50", "fused-unattributed", []),
        ("_gemm_mha_v2_myl109_47", "fused-unattributed", []),
        ("(Unnamed Layer* 7) [Constant]", "unmatched", []),
    ],
)
def test_match_by_engine_name_without_onnx(name: str, status: str, nodes: list[str]) -> None:
    assert parse.match_onnx_nodes(name, [], None) == (nodes, status)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"layer": "_gemm_mha_v2_myl0_17", "tactic": ""}, True),
        ({"layer": "x", "tactic": "_gemm_mha_v2_0x957a"}, True),
        ({"layer": "fmha_v2_flash_attention", "tactic": ""}, True),
        ({"layer": "/encoder/layers_2/mha/attn/MatMul", "tactic": "sm80_xmma_gemm_f16f16"}, False),
        ({"layer": "Conv_0 + Relu_1", "tactic": None}, False),
    ],
)
def test_is_fused_mha(row: dict[str, object], expected: bool) -> None:
    assert parse.is_fused_mha(row) is expected


def test_real_fixtures_have_no_fused_mha() -> None:
    # none of the recorded engines is a TRT 10 transformer: no `_mha` kernel may be claimed
    for profile, layers in PAIRS:
        raw = parse.build_raw_profile(parse.read_profile(profile), parse.read_layer_info(layers))
        assert not raw["fused_mha"].any()
        assert not math.isnan(raw["time_ms"].sum())
        assert isinstance(raw, pd.DataFrame)
