"""What every recipe shares on the command line: one-line errors, quiet logs, late TensorFlow.

    from vgg_keras import cli

    def check():            # flag and file checks, no TensorFlow
        ...

    def main(argv):         # imports vgg_keras' TensorFlow parts, does the work
        ...

    if __name__ == "__main__":
        cli.run(main, check=check)

`run` parses the flags, runs `check`, imports TensorFlow, then runs `main`. A bad flag,
an unknown or invalid config override, a missing file or dataset (any `ValueError`,
`TypeError`, `OSError`, `ImportError` or `absl.app.UsageError`) ends the program with
`error: <message>` on one stderr line and exit code 2, no traceback; `--debug` shows the
traceback instead. Errors found before TensorFlow is imported cost about a second.

Logs are quiet by default: absl/TensorFlow INFO lines (and TensorFlow's C++ start-up
lines) are hidden; absl's own `--verbosity=0` (INFO) or `--verbosity=1` (DEBUG) brings
them back, and an explicit `TF_CPP_MIN_LOG_LEVEL` in the environment is respected.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Callable

from absl import app, flags, logging

__all__ = ["USAGE_EXIT_CODE", "integers", "run"]

USAGE_EXIT_CODE = 2
_DEBUG = flags.DEFINE_bool("debug", False, "Show the Python traceback of an error instead of one line.")
# Errors that describe bad input: reported in one line. Anything else keeps its traceback.
_USER_ERRORS = (app.UsageError, flags.Error, ValueError, TypeError, OSError, ImportError)
# The run itself failed (e.g. training diverged): one line too, but not a usage error.
_RUN_ERRORS = (FloatingPointError,)


def integers(name: str, values: list[str]) -> list[int]:
    """The values of a list flag (`flags.DEFINE_list`) as integers.

    Args:
        name: The flag's name, e.g. "scales".
        values: Its values.

    Returns:
        The integers.

    Raises:
        app.UsageError: Naming the flag and its value when one is not an integer.
    """
    try:
        return [int(value) for value in values]
    except ValueError:
        raise app.UsageError(f"--{name}={','.join(values)}: allowed: comma-separated integers.") from None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _unknown_override(error: Exception, argv: list[str]) -> str | None:
    """The message "--config.a.b: no such config field 'b'; did you mean 'c'?" for ml_collections' errors."""
    text = str(error).encode().decode("unicode_escape")
    key = re.search(r"'(\w+)'", text)
    if key is None:
        return None
    arguments = [a.split("=", 1)[0] for a in argv[1:] if a.startswith("--") and re.search(rf"\.{key[1]}\b", a)]
    if not arguments:
        return None
    suggestion = re.search(r'Did you mean "(\w+)"', text)
    hint = f"; did you mean {suggestion[1]!r}?" if suggestion else "."
    return f"{arguments[0]}: no such config field {key[1]!r}{hint}"


def _config_file_error(name: str, error: Exception) -> str:
    """config_flags reports a config file it cannot load in a paragraph; keep its point."""
    missing = re.search(r"No such file or directory: '([^']+)'", str(error))
    return f"--{name}={missing[1]}: no such config file." if missing else f"--{name}: {_one_line(error)}"


def _message(error: BaseException, argv: list[str] | None = None) -> str:
    if argv is not None and isinstance(error, (AttributeError, KeyError)):
        text = _unknown_override(error, argv)
        if text:
            return text
    return _one_line(error) or type(error).__name__


def _exit(error: BaseException, code: int, argv: list[str] | None = None, suffix: str = "") -> None:
    sys.stdout.flush()
    print(f"error: {_message(error, argv)}{suffix}", file=sys.stderr, flush=True)
    sys.exit(code)


def _debug_requested(argv: list[str]) -> bool:
    """--debug before the flags are parsed (a parse error leaves FLAGS unparsed)."""
    return any(arg in ("--debug", "--debug=true", "--debug=True", "--debug=1") for arg in argv)


def _parse_flags(argv: list[str]) -> list[str]:
    """Absl's parse, with parse errors (bad flags, config overrides, config files) in one line."""
    try:
        remaining = flags.FLAGS(argv)
    except Exception as error:  # config_flags raises AttributeError, OSError, ... while parsing
        if _debug_requested(argv):
            raise
        _exit(error, USAGE_EXIT_CODE, argv)
    for name in flags.FLAGS:
        value = flags.FLAGS[name].value
        if type(value).__name__ == "_ErrorConfig":  # config_flags defers a config file's IOError
            if _debug_requested(argv):
                raise object.__getattribute__(value, "_error")
            _exit(app.UsageError(_config_file_error(name, object.__getattribute__(value, "_error"))), USAGE_EXIT_CODE)
    return remaining


def _quiet() -> bool:
    """Quiet unless the user asked for a verbosity (then absl's own level applies)."""
    if flags.FLAGS["verbosity"].present:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return False
    # absl raises the default to INFO after parsing; the recipes' default is WARNING.
    logging.set_verbosity(logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # C++ INFO off, warnings and errors kept
    return True


@contextlib.contextmanager
def _stderr_silenced(silence: bool):
    """Sends file descriptor 2 to /dev/null: TensorFlow's C++ start-up lines ignore its log level."""
    if not silence:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w", encoding="utf-8") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _import_tensorflow(quiet: bool) -> None:
    with _stderr_silenced(quiet):
        import tensorflow  # noqa: F401  # pylint: disable=import-outside-toplevel,unused-import


def _main(main: Callable, check: Callable | None, argv: list[str]):
    quiet = _quiet()
    checked = False
    try:
        if check is not None:
            check()
        checked = True
        _import_tensorflow(quiet)
        return main(argv)
    except _USER_ERRORS + _RUN_ERRORS as error:
        if _DEBUG.value:
            raise
        # An error found after the checks may come from deep inside a library: say how to see where.
        suffix = " (--debug shows the traceback)" if checked else ""
        _exit(error, USAGE_EXIT_CODE if isinstance(error, _USER_ERRORS) else 1, suffix=suffix)


def run(main: Callable, check: Callable | None = None) -> None:
    """`absl.app.run(main)` with one-line errors, quiet logs and checks before TensorFlow.

    Args:
        main: `main(argv)`, the recipe; it imports vgg_keras' TensorFlow parts itself.
        check: Called with no arguments after the flags are parsed and before TensorFlow
            is imported: the recipe's flag, file and dataset checks.
    """
    app.run(functools.partial(_main, main, check), flags_parser=_parse_flags)
