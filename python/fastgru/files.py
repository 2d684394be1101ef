"""Files written so that nothing is lost: the whole new file or the old one, never half of one."""

from __future__ import annotations

import contextlib
import errno
import os
import stat

__all__ = ["atomic_write", "describe_file_type"]


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", **open_arguments):
    """Opens a file object that replaces ``path`` only once everything was written.

    The data goes to a temporary file beside the destination (beside a symlink's target: the link
    is written through), is flushed and fsync'ed, then renamed over it, and the directory is
    fsync'ed. A path that exists and is not a regular file (a device, FIFO, socket or directory)
    is refused. On any failure (a full disk, a read-only folder, an exception in the ``with``
    block) the temporary file is removed, the previous file is left byte for byte, and the error
    names ``path``.
    """
    shown = os.fsdecode(os.fspath(path))
    if not shown or shown.endswith(os.sep):
        raise ValueError(f"path: expected the path of a file, got {shown!r}")
    destination = os.path.realpath(shown)
    try:
        existing = os.stat(destination)
    except FileNotFoundError:
        existing = None
    except OSError as error:
        raise _naming(error, shown) from None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        raise ValueError(f"path: expected a regular file or a new path, got {describe_file_type(existing.st_mode)}: {shown!r}")
    if existing is not None and not os.access(destination, os.W_OK):  # as open(path, "w") would refuse
        raise PermissionError(errno.EACCES, "the file is write-protected", shown)
    folder, name = os.path.split(destination)
    descriptor, temporary = _create_beside(folder, name, shown)
    try:
        try:
            if existing is not None:  # a new file gets the mode open() gives (0o666 less the umask)
                os.fchmod(descriptor, stat.S_IMODE(existing.st_mode))
            handle = os.fdopen(descriptor, mode, **open_arguments)
        except BaseException:
            os.close(descriptor)
            raise
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, destination)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError) and error.filename is None:  # a write or flush of this file
            raise _naming(error, shown) from None
        raise
    _fsync_directory(folder)


def _naming(error: OSError, path: str) -> OSError:
    """``error`` with ``path`` as its file name (never the temporary file's)."""
    if error.errno is None:
        return error
    return type(error)(error.errno, error.strerror, path)


def describe_file_type(mode: int) -> str:
    """'a directory', 'a FIFO', ...: what a non-regular file is, for error messages."""
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def _create_beside(folder: str, name: str, shown: str):
    """A new, exclusively created file in ``folder``: (descriptor, its path)."""
    for _ in range(100):
        # NAME_MAX is 255: a long name is shortened in the temporary one. os.urandom is what
        # secrets.token_hex reads, without the import time of secrets (random, hashlib, hmac):
        # saving is reachable from `import fastgru`.
        temporary = os.path.join(folder, f".{name[:200]}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), temporary
        except FileExistsError:
            continue
        except OSError as error:
            raise _naming(error, shown) from None
    raise FileExistsError(f"{shown}: could not create a temporary file beside it")


def _fsync_directory(folder: str) -> None:
    """Makes a rename in ``folder`` durable (where the platform allows opening a directory)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename itself has happened
    finally:
        os.close(descriptor)
