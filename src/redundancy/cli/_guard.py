"""Two failures of the commands that write, each turned into one clear error line (exit status 2):
a run folder locked by a running ``redundancy run`` (:func:`redundancy._lock.check_unlocked`), and a
full disk (``OSError`` ENOSPC: "no space left on device writing PATH")."""

from __future__ import annotations

import argparse
import errno
import functools
import sys
from collections.abc import Callable

from .._lock import FolderBusyError, check_unlocked

__all__ = ["check_unlocked", "guarded", "no_space_message"]


def no_space_message(err: OSError, fallback: object = None) -> str:
    """``"no space left on device writing PATH"``: ``err.filename`` (the library names the file it
    was writing), else ``fallback`` (the command's output), else no path.

    >>> no_space_message(OSError(errno.ENOSPC, "No space left on device", "/runs/a/probe.json"))
    'no space left on device writing /runs/a/probe.json'
    """
    path = err.filename if err.filename is not None else fallback
    return "no space left on device" + ("" if path is None else f" writing {path}")


def guarded(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wrap a subcommand's handler: a busy run folder and a full disk print one line and return 2."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except FolderBusyError as err:
            print(f"redundancy: error: {err}", file=sys.stderr)
            return 2
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise
            message = no_space_message(err, getattr(args, "out", None))
            print(f"redundancy: error: {message}", file=sys.stderr)
            return 2

    return run
