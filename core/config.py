"""The one settings object, read from the environment and validated at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.errors import SettingsError

MB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    # STUDIO_ARTIFACTS: where checkpoints, uploads and exports live; a local folder (shared by
    # every worker when it is a network mount) or an fsspec URL such as s3://bucket/studio
    # (core.artifacts); empty = $STUDIO_HOME/artifacts
    artifacts: str = ""
    max_upload_bytes: int = 200 * MB  # uploads larger than this are refused before reading
    max_archive_files: int = 20_000  # zip-bomb guard: members in one archive
    max_archive_bytes: int = 1024 * MB  # zip-bomb guard: total uncompressed size
    heartbeat_s: float = 2.0  # how often a worker says it is alive
    stale_after_s: float = 15.0  # a worker silent this long is presumed dead
    checkpoint_every_s: float = 5.0  # epoch-end checkpoints at most this often (0: every
    # epoch); on tiny epochs a checkpoint each would cost more than the training
    # specs and shared ?draft= links are refused past these before any parsing or tracing;
    # the defaults are far beyond real models (a ResNet-152 is ~500 layers, ~60M parameters)
    max_spec_bytes: int = 1 * MB  # the JSON text
    max_spec_layers: int = 2_000
    max_spec_depth: int = 32  # nesting of lists/objects; a spec needs about 5
    max_params: int = 2_000_000_000  # estimated from the meta trace, before any weight exists
    max_activation_bytes: int = 4096 * MB  # one sample's layer outputs (float32), forward pass
    keep_checkpoints: int = 3  # a run keeps its last few checkpoints (and its best val_loss one)
    max_run_attempts: int = 5  # a run whose worker dies this often fails instead of retrying
    max_image_pixels: int = 40_000_000  # per uploaded image, checked before decoding (~6300^2)
    max_text_field_bytes: int = 1 * MB  # one cell of an uploaded text CSV
    max_confusion_classes: int = 100  # larger confusion matrices are not stored or drawn
    # `studio serve`: a request body / a /predict batch larger than this is refused with 413
    serve_max_body_bytes: int = 10 * MB
    serve_max_samples: int = 256
    api_key: str | None = None  # STUDIO_API_KEY: `studio serve` then wants `Bearer <key>`

    @property
    def artifacts_url(self) -> str:
        """The artifact root as given: a local folder, or a remote fsspec URL."""
        return self.artifacts or str(self.home / "artifacts")

    @property
    def artifacts_remote(self) -> bool:
        """True when the root is a remote fsspec URL (s3://...), not a local folder."""
        return "://" in self.artifacts_url and not self.artifacts_url.startswith("file://")

    @property
    def artifacts_dir(self) -> Path:
        """The local artifact root (a remote root keeps exports here, in $STUDIO_HOME)."""
        if self.artifacts_remote:
            return self.home / "artifacts"
        return Path(self.artifacts_url.removeprefix("file://")).expanduser().resolve()

    @property
    def checkpoints_dir(self) -> Path:
        return self.artifacts_dir / "checkpoints"

    @property
    def uploads_dir(self) -> Path:
        return self.artifacts_dir / "uploads"

    @property
    def legacy_uploads_dir(self) -> Path:
        """Where uploads lived before STUDIO_ARTIFACTS: still read, never written."""
        return self.home / "datasets" / "uploads"

    @property
    def dataset_cache_dir(self) -> Path:
        return self.home / "datasets" / "cache"

    @property
    def exports_dir(self) -> Path:
        return self.artifacts_dir / "exports"

    @property
    def compressed_dir(self) -> Path:
        return self.artifacts_dir / "compressed"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not a number; set it to a number such as {default:g}"
        ) from None
    if value < minimum:
        raise SettingsError(f"{name}={raw} is below the minimum {minimum:g}")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read STUDIO_* variables; a bad value raises SettingsError naming the variable."""
    env = os.environ if env is None else env
    home = Path(env.get("STUDIO_HOME") or Path.home() / ".studio").expanduser().resolve()
    database_url = env.get("STUDIO_DATABASE_URL") or f"sqlite:///{home / 'studio.db'}"
    if "://" not in database_url:
        raise SettingsError(
            f"STUDIO_DATABASE_URL={database_url!r} is not a database URL; "
            "use sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB"
        )
    return Settings(
        home=home,
        database_url=database_url,
        artifacts=env.get("STUDIO_ARTIFACTS", "").strip(),
        max_upload_bytes=int(_number(env, "STUDIO_MAX_UPLOAD_MB", 200, minimum=1) * MB),
        max_archive_files=int(_number(env, "STUDIO_MAX_ARCHIVE_FILES", 20_000, minimum=1)),
        max_archive_bytes=int(_number(env, "STUDIO_MAX_ARCHIVE_MB", 1024, minimum=1) * MB),
        heartbeat_s=_number(env, "STUDIO_HEARTBEAT_S", 2.0, minimum=0.05),
        stale_after_s=_number(env, "STUDIO_STALE_AFTER_S", 15.0, minimum=0.1),
        checkpoint_every_s=_number(env, "STUDIO_CHECKPOINT_EVERY_S", 5.0, minimum=0.0),
        max_spec_bytes=int(_number(env, "STUDIO_MAX_SPEC_KB", 1024, minimum=1) * 1024),
        max_spec_layers=int(_number(env, "STUDIO_MAX_SPEC_LAYERS", 2_000, minimum=1)),
        max_spec_depth=int(_number(env, "STUDIO_MAX_SPEC_DEPTH", 32, minimum=4)),
        max_params=int(_number(env, "STUDIO_MAX_PARAMS", 2e9, minimum=1)),
        max_activation_bytes=int(_number(env, "STUDIO_MAX_ACTIVATION_MB", 4096, minimum=1) * MB),
        keep_checkpoints=int(_number(env, "STUDIO_KEEP_CHECKPOINTS", 3, minimum=1)),
        max_run_attempts=int(_number(env, "STUDIO_MAX_RUN_ATTEMPTS", 5, minimum=1)),
        max_image_pixels=int(_number(env, "STUDIO_MAX_IMAGE_MEGAPIXELS", 40, minimum=0.001) * 1e6),
        max_text_field_bytes=int(_number(env, "STUDIO_MAX_TEXT_FIELD_KB", 1024, minimum=1) * 1024),
        max_confusion_classes=int(_number(env, "STUDIO_MAX_CONFUSION_CLASSES", 100, minimum=2)),
        serve_max_body_bytes=int(_number(env, "STUDIO_SERVE_MAX_BODY_MB", 10, minimum=0.001) * MB),
        serve_max_samples=int(_number(env, "STUDIO_SERVE_MAX_SAMPLES", 256, minimum=1)),
        api_key=env.get("STUDIO_API_KEY") or None,
    )


def get_settings() -> Settings:
    """The settings for the current environment (re-read each call so tests can change it)."""
    return load_settings()
