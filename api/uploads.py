"""Reading an audio file from a multipart body with every size bounded.

Starlette spools multipart files to disk with no cap, so the declared length is checked before
parsing and the file part is read to at most one byte past the limit. Both upload routes (jobs and
the OpenAI transcription API) read their audio through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from api.errors import ApiError
from pipelines.settings import Settings

#: The multipart body also carries boundaries and small fields; allow that much beyond the file cap.
MULTIPART_SLACK = 64 * 1024


@dataclass(frozen=True)
class AudioUpload:
    data: bytes
    filename: str
    form: FormData

    def text(self, name: str) -> str | None:
        """A text field, or None when absent or empty."""
        value = self.form.get(name)
        return value if isinstance(value, str) and value else None


def _too_large(settings: Settings) -> ApiError:
    return ApiError(413, f"upload larger than {settings.max_upload_bytes} bytes", code="too_large")


async def read_audio_upload(
    request: Request,
    settings: Settings,
    *,
    accepted_part_types: tuple[str, ...],
    max_fields: int,
    missing_file: ApiError,
) -> AudioUpload:
    """The `file` part and the form, refusing wrong content types (415) and oversized bodies (413)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(
            415, "send the audio as multipart/form-data with a 'file' part", code="unsupported_media_type"
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_upload_bytes + MULTIPART_SLACK:
        raise _too_large(settings)
    form = await request.form(max_files=1, max_fields=max_fields, max_part_size=64 * 1024)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise missing_file
    part_type = (upload.content_type or "application/octet-stream").lower()
    if not part_type.startswith(accepted_part_types):
        raise ApiError(
            415, f"file part has content type {part_type!r}; expected audio/*", code="unsupported_media_type"
        )
    data = await upload.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise _too_large(settings)
    return AudioUpload(data, PurePath(upload.filename or "upload").name, form)
