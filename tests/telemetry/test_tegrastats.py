"""tegrastats parser on every recorded line (kept exactly as published) and the live reader."""

from __future__ import annotations

import math
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from orinprof.errors import OrinprofError
from orinprof.telemetry import ReaderOptions, open_session
from orinprof.telemetry.tegrastats import TegrastatsReader, parse_file, parse_line, parse_lines, readings

LINE_FILES = sorted((FIXTURES / "tegrastats").glob("*.txt"))
LOG = FIXTURES / "tegrastats_logs" / "orin_nano_8gb_tegrastats_data.txt"


def _line(path: Path) -> str:
    text = path.read_text()
    assert text.count("\n") == 1, "each fixture holds exactly one line"
    return text.rstrip("\n")


# ---- expectations derived from the line's own text with plain string operations (not the regexes)


def _cpu_entries(line: str) -> list[str]:
    return line.split("CPU [", 1)[1].split("]", 1)[0].split(",")


def _rail_tokens(line: str) -> dict[str, list[int]]:
    tokens = line.split()
    rails = {}
    for i, tok in enumerate(tokens):
        if "mW/" in tok and tokens[i - 1] != "NC":
            rails[tokens[i - 1]] = [int(part.replace("mW", "")) for part in tok.split("/")]
    return rails


def _temp_tokens(line: str) -> dict[str, float]:
    temps = {}
    for tok in line.split():
        if "@" in tok and tok.endswith("C") and tok[0].isalpha():
            name, value = tok.split("@", 1)
            temps[name.lower()] = float(value.split("/")[0].rstrip("C"))
    return temps


@pytest.mark.parametrize("path", LINE_FILES, ids=lambda p: p.stem)
def test_every_fixture_line_parses_as_it_is(path: Path) -> None:
    line = _line(path)
    sample = parse_line(line)
    assert sample is not None

    entries = _cpu_entries(line)
    assert len(sample.cpus) == len(entries)
    assert sum(not c.online for c in sample.cpus) == entries.count("off")
    for core, entry in zip(sample.cpus, entries, strict=True):
        if entry != "off":
            load, freq = entry.split("%@")
            assert core.load_pct == float(load) and core.freq_mhz == float(freq)

    expected_rails = _rail_tokens(line)
    assert set(sample.rails) == set(expected_rails)
    for name, values in expected_rails.items():
        assert sample.rails[name].cur_mw == values[0]
        assert sample.rails[name].avg_mw == values[1]
        if len(values) == 3:
            assert sample.rails[name].max_mw == values[2]

    for name, value in _temp_tokens(line).items():
        if value == -256:
            assert sample.temps[name] is None  # offline sensor, not a temperature
        else:
            assert sample.temps[name] == value

    has_stamp = line[:2].isdigit()
    assert (sample.timestamp is not None) == has_stamp
    ram = line.split("RAM ", 1)[1].split("MB", 1)[0].split("/")
    assert (sample.ram_used_mb, sample.ram_total_mb) == (float(ram[0]), float(ram[1]))


@pytest.mark.parametrize("path", LINE_FILES, ids=lambda p: p.stem)
def test_gpu_field_matches_the_text(path: Path) -> None:
    line = _line(path)
    sample = parse_line(line)
    assert sample is not None
    tokens = line.split()
    gr3d = tokens[tokens.index("GR3D_FREQ") + 1]
    load, _, freq = gr3d.partition("@")
    assert sample.gpu_load_pct == float(load.rstrip("%"))
    expected = [float(f) for f in freq.strip("[]").split(",")] if freq else []
    if "GR3D2_FREQ" in tokens:  # JetPack 5: the second GPC has its own field
        expected.append(float(tokens[tokens.index("GR3D2_FREQ") + 1].split("@")[1]))
    assert list(sample.gpu_freq_mhz) == expected


def test_specific_forms() -> None:
    jp5 = parse_line(_line(FIXTURES / "tegrastats" / "agx_orin_32gb_devkit_jp5.0.2_idle_a.txt"))
    assert jp5 is not None and jp5.gpu_freq_mhz == (114.0, 114.0) and jp5.emc_freq_mhz == 204.0
    assert jp5.engines["NVJPG1"] == 729.0 and jp5.engines["VIC"] == 729.0
    assert "NC" not in jp5.rails
    dla = parse_line(_line(FIXTURES / "tegrastats" / "agx_orin_64gb_dla_int8_load.txt"))
    assert dla is not None and dla.engines["NVDLA0"] == 1600.0 and dla.gpu_freq_mhz == (407.0, 407.0)
    jp7 = parse_line(_line(FIXTURES / "tegrastats" / "agx_orin_64gb_jp7.2_r39.2.txt"))
    assert jp7 is not None and math.isnan(jp7.swap_used_mb) and math.isnan(jp7.engines["NVDLA1"])
    nosudo = parse_line(_line(FIXTURES / "tegrastats" / "agx_orin_64gb_nosudo_no_timestamp.txt"))
    assert nosudo is not None and nosudo.gpu_freq_mhz == () and math.isnan(nosudo.emc_freq_mhz)
    assert nosudo.timestamp is None and nosudo.temps["cpu"] == 42.0


def test_agx_total_excludes_vddq_and_nx_uses_vdd_in() -> None:
    line = _line(FIXTURES / "tegrastats" / "agx_orin_32gb_devkit_jp5.0.2_idle_a.txt")
    rails = _rail_tokens(line)
    total = {r.channel: r.value for r in readings(parse_line(line))}["power_total"]  # type: ignore[arg-type]
    assert total == rails["VDD_GPU_SOC"][0] + rails["VDD_CPU_CV"][0] + rails["VIN_SYS_5V0"][0]
    nx_line = _line(FIXTURES / "tegrastats" / "orin_nx_16gb_jp5.1.1_r35.3.1.txt")
    nx_total = {r.channel: r.value for r in readings(parse_line(nx_line))}["power_total"]  # type: ignore[arg-type]
    assert nx_total == _rail_tokens(nx_line)["VDD_IN"][0]


def test_offline_sensors_and_cores_are_nan_with_status() -> None:
    line = _line(FIXTURES / "tegrastats" / "agx_orin_64gb_jp5.1_maxn_idle.txt")
    by_channel = {r.channel: r for r in readings(parse_line(line))}  # type: ignore[arg-type]
    assert math.isnan(by_channel["temp_gpu"].value) and by_channel["temp_gpu"].status == "sensor_offline"
    nano = _line(FIXTURES / "tegrastats" / "orin_nano_8gb_idle.txt")
    nano_ch = {r.channel: r for r in readings(parse_line(nano))}  # type: ignore[arg-type]
    assert nano_ch["cpu5_load"].status == "offline" and math.isnan(nano_ch["cpu5_load"].value)
    assert nano_ch["gpu_freq"].status == "not_reported"


def test_whole_log_parses_with_grouped_monotone_timestamps() -> None:
    lines = [line for line in LOG.read_text().splitlines() if line.strip()]
    df, parsed, skipped = parse_file(LOG)
    assert (parsed, skipped) == (len(lines), 0)
    t = df.drop_duplicates("t_s")["t_s"].to_numpy()
    assert (df["t_s"].diff().dropna() >= 0).all()
    assert len(t) == len({line[:19] for line in lines})  # one t_s per printed second
    assert t[-1] - t[0] == pytest.approx(10.0)  # 19:20:22 … 19:20:32 in the file
    totals = df[df["channel"] == "power_total"]
    assert len(totals) == len(lines)


def test_unparsable_lines_are_counted() -> None:
    samples, skipped = parse_lines(["garbage", "", "RAM 1/2MB (lfb 1x4MB)", "CPU [oops]"])
    assert len(samples) == 1 and skipped == 2


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_crashes(text: str) -> None:
    samples, skipped = parse_lines(text.splitlines())
    assert len(samples) + skipped == sum(1 for line in text.splitlines() if line.strip())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(LINE_FILES), st.integers(min_value=0, max_value=600), st.data())
def test_truncated_and_mangled_lines_never_crash(path: Path, cut: int, data: st.DataObject) -> None:
    line = _line(path)
    truncated = line[:cut]
    parse_line(truncated)
    pos = data.draw(st.integers(min_value=0, max_value=len(line)))
    junk = data.draw(st.text(max_size=8))
    parse_line(line[:pos] + junk + line[pos:])


# ---------------------------------------------------------------------------- live reader


def _fake_tegrastats(tmp_path: Path, lines: list[str], exit_after: int | None = None) -> list[str]:
    """A stand-in ``tegrastats`` that prints recorded lines at the requested --interval."""
    data = tmp_path / "lines.txt"
    data.write_text("\n".join(lines) + "\n")
    script = tmp_path / "fake_tegrastats.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            interval = int(sys.argv[sys.argv.index("--interval") + 1]) / 1000
            lines = open({str(data)!r}).read().splitlines()
            n = 0
            while True:
                for line in lines:
                    print(line, flush=True)
                    n += 1
                    if {exit_after!r} is not None and n >= {exit_after!r}:
                        sys.stderr.write("fake tegrastats: bye\\n")
                        sys.exit(3)
                    time.sleep(interval)
            """
        )
    )
    return [sys.executable, str(script)]


def test_live_reader_samples_and_summarizes(tmp_path: Path) -> None:
    line = _line(FIXTURES / "tegrastats" / "agx_orin_64gb_dla_int8_load.txt")
    cmd = _fake_tegrastats(tmp_path, [line, "not a tegrastats line"])
    opts = ReaderOptions(tegrastats_cmd=cmd, sysfs_root=tmp_path, proc_root=tmp_path, etc_root=tmp_path)
    with open_session("tegrastats", interval_s=0.02, options=opts) as session:
        time.sleep(0.3)
        t0 = time.perf_counter()
        time.sleep(0.4)
        t1 = time.perf_counter()
        time.sleep(0.1)
    assert session.source == "tegrastats"
    assert session.reader is not None and session.reader.skipped >= 1
    summary = session.summarize(t0, t1, iterations=10)
    rails = _rail_tokens(line)
    total_mw = rails["VDD_GPU_SOC"][0] + rails["VDD_CPU_CV"][0] + rails["VIN_SYS_5V0"][0]
    assert summary["power_avg_w"] == pytest.approx(total_mw / 1000)
    assert summary["energy_per_inference_mj"] == pytest.approx(total_mw * (t1 - t0) / 10)
    assert summary["power_vddq_vdd2_1v8ao_avg_w"] == pytest.approx(rails["VDDQ_VDD2_1V8AO"][0] / 1000)
    assert summary["gpu_freq_mhz_median"] == 407.0 and summary["telemetry_samples"] >= 2
    assert "telemetry_sampler_died" not in summary["trust_flags"]


def test_sampler_that_dies_keeps_samples_and_flags(tmp_path: Path) -> None:
    line = _line(FIXTURES / "tegrastats" / "orin_nano_8gb_idle.txt")
    cmd = _fake_tegrastats(tmp_path, [line], exit_after=3)
    opts = ReaderOptions(tegrastats_cmd=cmd, sysfs_root=tmp_path, proc_root=tmp_path, etc_root=tmp_path)
    t0 = time.perf_counter()
    with open_session("tegrastats", interval_s=0.01, options=opts) as session:
        deadline = time.time() + 10
        while session.reader is not None and not session.reader.died and time.time() < deadline:
            time.sleep(0.02)
    t1 = time.perf_counter()
    assert session.reader is not None and session.reader.died
    assert session.samples()["t_s"].nunique() == 3
    assert "telemetry_sampler_died" in session.summarize(t0, t1, 1)["trust_flags"]


def test_missing_tegrastats(tmp_path: Path) -> None:
    reader = TegrastatsReader(tegrastats_cmd=[str(tmp_path / "no-such-tegrastats")])
    assert not reader.probe().ok and "not found" in reader.probe().reason
    opts = ReaderOptions(tegrastats_cmd=[str(tmp_path / "no-such-tegrastats")])
    with pytest.raises(OrinprofError, match="tegrastats"):
        open_session("tegrastats", options=opts)
