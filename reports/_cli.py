"""What every ckptkit command line does with errors: one line, an exit code, a traceback only on --debug."""
from __future__ import annotations

import os
import sys

EXIT_OK, EXIT_FINDINGS, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def run_guarded(prog: str, args, user_errors: tuple[type, ...] = ()) -> int:
    """Run ``args.run(args)``; user errors carry ``exit_code`` (default 2)."""
    try:
        return args.run(args)
    except user_errors as e:
        return _fail(prog, args, str(e), getattr(e, "exit_code", EXIT_BAD_INPUT))
    except BrokenPipeError:  # output piped into `head`: not an error
        sys.stdout = open(os.devnull, "w")
        return EXIT_OK
    except (OSError, MemoryError) as e:
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        return _fail(prog, args, f"{where}{getattr(e, 'strerror', None) or e}", EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return _fail(prog, args, "interrupted; rerun to resume", EXIT_INTERRUPTED)
    except Exception as e:  # a bug of ours: still one line, the traceback on --debug
        return _fail(prog, args, f"unexpected {type(e).__name__}: {e} (rerun with --debug and report it)",
                     EXIT_BAD_INPUT)


def _fail(prog: str, args, message: str, code: int) -> int:
    if getattr(args, "debug", False):
        raise
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code
