"""What the `voicechain` commands share: the console, and settings from the environment plus flags."""

from __future__ import annotations

from rich.console import Console

from pipelines.settings import Settings, get_settings

console = Console()


def settings_from(**overrides: object) -> Settings:
    """Environment first, then command-line flags that were given."""
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values) if values else get_settings()
