"""Whatever Facetrace writes is readable by its own user only: files 0600, folders 0700.

The data folder holds templates, face crops, index files, certificates, reports and keys. Each
entry point (the ``facetrace`` command, which also runs the server) calls :func:`keep_private`
once at start, so every file the process creates, whichever library writes it (SQLite, FAISS,
Alembic), is private; :mod:`facetrace.core.atomic` also sets the mode of what it writes explicitly, and
:func:`secret` creates key files 0600 whatever the process's umask.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def keep_private(data_dir: Path) -> None:
    """From now on create files 0600 and folders 0700; close the data folder to other users.

    Only the folder itself is tightened (one ``chmod``, however large the gallery): files an older
    version created with wider modes are then out of other users' reach too."""
    os.umask(0o777 & ~FOLDER_MODE)
    if data_dir.is_dir() and data_dir.stat().st_uid == os.getuid():
        data_dir.chmod(FOLDER_MODE)


def secret(path: Path, size: int = 32) -> bytes:
    """The key kept in ``path`` (its bytes, surrounding white space aside); a random one (hex) is
    created 0600 at first use.

    The key is written to a private temporary file, then linked into place: two processes starting
    at once agree on one key, and a reader never sees a half-written file."""
    if not path.exists():
        path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_hex(size))
                file.flush()
                os.fsync(file.fileno())
            with contextlib.suppress(FileExistsError):  # another process created it first: theirs holds
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    return path.read_bytes().strip()
