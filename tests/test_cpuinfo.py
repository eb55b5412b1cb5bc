"""specdec.cpuinfo: the one reader of /proc/cpuinfo (model name, flags)."""
import platform

from specdec import cpuinfo

TEXT = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx2 fma f16c
processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse2 avx2 fma f16c
"""


def test_model_and_flags_come_from_the_first_processor(tmp_path, monkeypatch):
    f = tmp_path / "cpuinfo"
    f.write_text(TEXT)
    monkeypatch.setattr(cpuinfo, "CPUINFO", f)
    assert cpuinfo.model() == "AMD EPYC 7B13"
    assert cpuinfo.flags() == ["fpu", "sse2", "avx2", "fma", "f16c"]
    assert "avx512_vnni" not in cpuinfo.flags()


def test_no_cpuinfo_means_no_flags_and_platforms_name(tmp_path, monkeypatch):
    monkeypatch.setattr(cpuinfo, "CPUINFO", tmp_path / "missing")
    assert cpuinfo.flags() == []
    assert cpuinfo.model() == (platform.processor() or platform.machine())


def test_a_field_is_matched_whole_not_by_prefix(tmp_path, monkeypatch):
    f = tmp_path / "cpuinfo"
    f.write_text("model\t\t: 17\nmodel name\t: Intel Xeon\nflagsx\t: nope\nflags\t: avx512f amx_int8\n")
    monkeypatch.setattr(cpuinfo, "CPUINFO", f)
    assert cpuinfo.model() == "Intel Xeon" and cpuinfo.flags() == ["avx512f", "amx_int8"]
