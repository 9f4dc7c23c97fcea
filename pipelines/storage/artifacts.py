"""The artifact store: audio files on disk under the data directory, addressed by relative paths.

Files are written to a temporary name and renamed into place, so a reader never sees half a file and a
redelivered stage that writes the same artifact again simply replaces it. In a multi-host deployment the
directory is a shared volume (see deploy/).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoredFile:
    path: str  # relative to the store root
    size_bytes: int
    sha256: str


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, relative_path: str, data: bytes) -> StoredFile:
        """Write durably (fsync before rename) so a committed row never points at a missing file."""
        target = self._resolve(relative_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredFile(relative_path, len(data), hashlib.sha256(data).hexdigest())

    def get(self, relative_path: str) -> bytes:
        return self._resolve(relative_path).read_bytes()

    def exists(self, relative_path: str) -> bool:
        return self._resolve(relative_path).is_file()

    def _resolve(self, relative_path: str) -> Path:
        """Refuse paths that would escape the root; ids come from us, but a bad row must not read /etc."""
        root = self.root.resolve()
        target = (root / relative_path).resolve()
        if root not in target.parents:
            raise ValueError(f"artifact path escapes the store: {relative_path!r}")
        return target
