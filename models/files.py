"""Atomic file writes: a complete file appears under its name, or nothing changes. And the one
JSON reader for files a person may have edited (bundles, settings, the registry index).

Everything the product persists (bundles, checkpoints, reports, exports, the registry index) goes
through here: write beside the target, flush to disk, rename over it. A crash, a full disk or a
kill leaves the previous file intact.

An output only ever takes the place of a *regular* file. A symlink is written through (its target
is replaced, the link stays, as a shell's ``>`` would do); a folder, FIFO, socket or device node —
directly or behind a symlink — is refused before anything is written, because renaming over it
would silently turn a pipe or a device into a file. New files get the permissions a plain
``open()`` would give (0666 less the umask); a replaced file keeps its own. A file holding secrets
(settings with a broker password) asks for ``private=True``: owner-only, see :func:`output_mode`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar


class UnsafeOutput(OSError):
    """The output path exists and is not a regular file (or may not be replaced)."""


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` to read it races other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode() -> int:
    """Permissions of a newly created file: what ``open(path, "w")`` would give (0666 & ~umask)."""
    return 0o666 & ~_umask()


PRIVATE_MODE = 0o600


def output_mode(existing: int | None, private: bool = False) -> int:
    """Permissions for a file written over one with mode ``existing`` (None: a new file).

    A replaced file keeps its mode, a new one gets :func:`default_mode`. ``private`` caps both at
    owner read/write (0600): a secret is never world- or group-readable, not even in a file an
    older version created 0644, while an existing file's stricter mode (0400) is kept.
    """
    mode = default_mode() if existing is None else existing
    return mode & PRIVATE_MODE if private else mode


def output_target(path: str | Path, overwrite: bool = True) -> Path:
    """The regular file an output may replace for ``path`` (a symlink's target), else raise.

    Raises :class:`UnsafeOutput` for a folder, FIFO, socket or device (directly or behind a
    symlink) and :class:`FileExistsError` for an existing file when ``overwrite`` is false.
    """
    given = Path(path)
    try:
        target = given.resolve() if given.is_symlink() else given
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before Python 3.13)
        raise UnsafeOutput(errno.ELOOP, "symlink loop; refusing to write there", str(given)) from exc
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return target
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (FIFO, socket or device)"
        raise UnsafeOutput(errno.EINVAL, f"is {kind}; refusing to write over it", str(given))
    if not overwrite:
        raise FileExistsError(errno.EEXIST, "already exists (use --force to replace it)", str(given))
    return target


def atomic_write(
    path: str | Path, write: Callable[[Path], None], overwrite: bool = True, private: bool = False
) -> Path:
    """Call ``write(tmp)`` to produce the file, fsync it, then rename it onto ``path``.

    ``path`` must be new or a regular file (see :func:`output_target`); through a symlink, the
    link's target is replaced. ``private``: owner-only permissions (:func:`output_mode`); the
    temporary file is 0600 from the start, so the content is never readable by others on the way.
    Returns ``path`` as given.
    """
    given = Path(path)
    target = output_target(given, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        existing: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        existing = None
    mode = output_mode(existing, private)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        fsync_file(tmp)
        os.chmod(tmp, mode)
        output_target(given, overwrite)  # nothing else appeared there while we wrote
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return given


def atomic_write_text(path: str | Path, text: str, overwrite: bool = True, private: bool = False) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite, private)


def stamp_path(path: Path) -> Path:
    """Where a cached file's stamp lives: ``<name>.sha256`` beside it."""
    return path.with_name(path.name + ".sha256")


def write_stamp(path: Path, digest: Callable[[Path], str] = sha256_file, stamp: Path | None = None) -> str:
    """Record ``path``'s digest once it is complete: a later reader trusts only matching bytes.

    ``stamp``: where the record goes when not :func:`stamp_path` (a cache that predates it).
    Returns the digest.
    """
    value = digest(path)
    atomic_write_text(stamp or stamp_path(path), value + "\n")
    return value


def stamp_matches(path: Path, digest: Callable[[Path], str] = sha256_file, stamp: Path | None = None) -> bool:
    """The cached file exists and its bytes are the ones recorded when it was written (a truncated,
    edited or half-copied file is not, and is rebuilt by its owner)."""
    return _stamped_digest(path, digest, stamp) is not None


def _stamped_digest(path: Path, digest: Callable[[Path], str], stamp: Path | None) -> str | None:
    try:
        if not path.is_file():
            return None
        recorded = (stamp or stamp_path(path)).read_text().strip()
        return recorded if recorded == digest(path) else None
    except (OSError, UnicodeDecodeError):
        return None


T = TypeVar("T")


def verified_cache(
    target: Path,
    build: Callable[[Path], None],
    open_file: Callable[[Path, str], T],
    *,
    unusable: tuple[type[Exception], ...] = (),
    digest: Callable[[Path], str] = sha256_file,
    stamp: Path | None = None,
) -> T:
    """A file derived from something else (an ONNX export of a bundle, converted weights), kept in a
    cache and trusted only while its bytes match the digest stamped beside it.

    Returns ``open_file(target, digest)``. The file is built again by ``build(target)`` when it is
    missing, when its stamp is missing or does not match (truncated, edited, half-copied), or when
    ``open_file`` refuses the stamped bytes with one of ``unusable`` (a file this runtime cannot
    load): a damaged cache costs one rebuild, never every run until someone deletes it by hand.

    ``build`` must leave ``target`` complete (write it atomically); the stamp is written only after
    it, so a crash between the two leaves a file without a stamp, rebuilt next time. What the file
    derives from belongs in ``target``'s name (a hash of the source): the stamp vouches for the
    file's own bytes. Errors of ``build``, of writing the stamp and of opening a freshly built file
    propagate to the caller, who words them.
    """
    recorded = _stamped_digest(target, digest, stamp)
    if recorded is not None:
        try:
            return open_file(target, recorded)
        except unusable:
            pass
    build(target)
    return open_file(target, write_stamp(target, digest, stamp))


MAX_JSON_DEPTH = 64


class JSONTooDeep(ValueError):
    """A JSON file nested deeper than any file of ours (a nesting bomb, or a broken generator)."""


def _json_depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests lists and objects, counting no further than ``limit + 1``.

    Iterative on purpose: walking a nest recursively is the very stack overflow this guards against.
    """
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= limit:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def read_json(path: str | Path, limit: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value in ``path`` (UTF-8), refusing a nest deeper than ``limit`` with :class:`JSONTooDeep`.

    ``json.loads`` recurses once per level, so ``[[[[...`` a thousand deep ends in a RecursionError
    (a traceback, not a message), and a nest just shallow enough to parse fails later, wherever the
    product walks it again (saving a fine-tuned bundle's provenance, for one). No file of ours nests
    more than a few levels. Other failures are those of ``read_text`` and ``json.loads``: OSError,
    UnicodeDecodeError, json.JSONDecodeError (both ValueErrors).
    """
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except RecursionError:
        raise JSONTooDeep(f"nested too deeply (more than {limit} levels of lists or objects)") from None
    if _json_depth(value, limit) > limit:
        raise JSONTooDeep(f"nested too deeply (more than {limit} levels of lists or objects)")
    return value
