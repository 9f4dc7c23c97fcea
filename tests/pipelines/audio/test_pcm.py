from __future__ import annotations

import hashlib

import numpy as np
import pytest

from pipelines.audio import pcm

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))

#: SHA-256 of the output of the ITU-T G.711 reference (Sun g711.c, identical to CPython's audioop) for
#: every int16 input and every code byte, so the vectorised version is pinned bit for bit.
REFERENCE = {
    "ulaw_encode": "81d633c9e6972a18c74a58720b96cb8ca0bdd096d4060b646dd708c3b846019a",
    "alaw_encode": "38488f6fd710f4686360edc4d38639f96c491595ef93f8eb8d62d5e07ca6ce7b",
    "ulaw_decode": "3dab54339e520bb2c924826e3b72a917a2b612e9fd12fc867500f1d983a75827",
    "alaw_decode": "e04788d110e58ff8c70c93b8480190d973e3b67876b6119abbaec766cc75c174",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_pcm16_to_float_is_little_endian_and_scaled() -> None:
    out = pcm.pcm16_to_float(b"\x00\x40\x00\x80\xff\x7f\x01\x00")
    assert out.dtype == np.float32
    assert out.tolist() == [0.5, -1.0, 32767 / 32768, 1 / 32768]


def test_pcm16_odd_byte_count_is_refused() -> None:
    with pytest.raises(ValueError, match="even"):
        pcm.pcm16_to_float(b"\x00\x01\x02")


def test_pcm16_round_trip_is_lossless() -> None:
    data = ALL_INT16.astype("<i2").tobytes()
    assert pcm.float_to_pcm16(pcm.pcm16_to_float(data)) == data


def test_float_to_pcm16_clips() -> None:
    out = pcm.float_to_pcm16(np.array([2.0, -2.0, 1.0, 0.0], np.float32))
    assert np.frombuffer(out, "<i2").tolist() == [32767, -32768, 32767, 0]


def test_empty_input() -> None:
    assert pcm.pcm16_to_float(b"").size == 0
    assert pcm.ulaw_encode(np.zeros(0, np.int16)) == b""
    assert pcm.alaw_decode(b"").size == 0


@pytest.mark.parametrize("name", ["ulaw_encode", "alaw_encode"])
def test_g711_encode_matches_reference(name: str) -> None:
    assert sha256(getattr(pcm, name)(ALL_INT16)) == REFERENCE[name]


@pytest.mark.parametrize("name", ["ulaw_decode", "alaw_decode"])
def test_g711_decode_matches_reference(name: str) -> None:
    decoded = getattr(pcm, name)(ALL_CODES)
    assert decoded.dtype == np.int16
    assert sha256(decoded.astype("<i2").tobytes()) == REFERENCE[name]


def test_g711_known_values() -> None:
    assert pcm.ulaw_decode(bytes([0x00, 0x7F, 0x80, 0xFF])).tolist() == [-32124, 0, 32124, 0]
    assert pcm.alaw_decode(bytes([0x00, 0x55, 0xD5, 0x80])).tolist() == [-5504, -8, 8, 5504]
    samples = np.array([0, -1, 32767, -32768, 1000], np.int16)
    assert pcm.ulaw_encode(samples).hex() == "ff7e8000ce"
    assert pcm.alaw_encode(samples).hex() == "d555aa2afa"


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_g711_round_trip_within_quantisation_error(law: str) -> None:
    """Logarithmic quantisation: the error grows with the magnitude, about 1/32 of it plus a floor."""
    encode, decode = getattr(pcm, f"{law}_encode"), getattr(pcm, f"{law}_decode")
    x = ALL_INT16.astype(np.int64)
    error = np.abs(decode(encode(ALL_INT16)).astype(np.int64) - x)
    assert np.all(error <= np.abs(x) / 32 + 8)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_g711_codewords_are_fixed_points(law: str) -> None:
    encode, decode = getattr(pcm, f"{law}_encode"), getattr(pcm, f"{law}_decode")
    values = decode(ALL_CODES)
    assert np.array_equal(decode(encode(values)), values)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_g711_float_helpers(law: str) -> None:
    tone = (0.5 * np.sin(np.arange(800) / 5)).astype(np.float32)
    data = getattr(pcm, f"float32_to_{law}")(tone)
    assert len(data) == 800
    back = getattr(pcm, f"{law}_to_float32")(data)
    assert back.dtype == np.float32
    assert np.abs(back - tone).max() < 0.5 / 32 + 8 / 32768


@pytest.mark.parametrize("name", ["ulaw_encode", "alaw_encode"])
def test_g711_refuses_float_samples(name: str) -> None:
    """A float here would be read as near-silence; refusing it surfaces the bug."""
    with pytest.raises(TypeError):
        getattr(pcm, name)(np.zeros(4, np.float32))
