"""The `hwnas` command line: one module per command group, nested subcommands with their own `--help`.

    hwnas quickstart | train | retrain | search | plot | export | measure | lut {build,check}
          | agent serve | space {show,tailor} | list {spaces,modes,objectives,targets,algorithms}
          | data {download,prepare}

Exit status: 0 on success; 2 for a usage error (a bad flag value, an unknown name, a config key that does
not exist), with one line `hwnas: error: ...` naming the bad value and the valid ones; 1 for a runtime
failure (a missing or corrupt file, a refused token, an agent that does not answer); 130 when interrupted.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from hwnas.core.errors import HwnasError

from . import data, deploy, hardware, listing, score, search, space, train
from .common import add_verbosity, configure_logging
from .options import apply_yaml_defaults, load_yaml

log = logging.getLogger("hwnas.cli")

#: The command groups, in the order `hwnas --help` lists them; each module has `register(commands)`.
GROUPS = (search, score, train, deploy, hardware, space, listing, data)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (`hwnas train: error: ...`), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class Commands:
    """Adds commands (and nested subcommands) to a subparsers action; every leaf gets `-v/--quiet`, and its
    function and config classes are kept in its defaults."""

    def __init__(self, subparsers: argparse._SubParsersAction, prefix: str = "hwnas"):
        self.subparsers, self.prefix = subparsers, prefix

    def add(self, name: str, help: str, func: Callable[[argparse.Namespace], int],
            configure: Callable[[argparse.ArgumentParser], object] | None = None,
            description: str | None = None) -> argparse.ArgumentParser:
        p = self.subparsers.add_parser(name, help=help, description=description or help,
                                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        if configure is not None:
            configure(p)
        add_verbosity(p)
        p.set_defaults(_func=func, _parser=p)
        return p

    def group(self, name: str, help: str) -> "Commands":
        """A command with subcommands of its own (`hwnas lut build`)."""
        p = self.subparsers.add_parser(name, help=help, description=help)
        sub = p.add_subparsers(dest=f"_{name}_command", metavar="ACTION", required=True)
        return Commands(sub, f"{self.prefix} {name}")


def build_parser() -> argparse.ArgumentParser:
    """The whole `hwnas` parser tree."""
    parser = Parser(
        prog="hwnas",
        description="Hardware-aware NAS: train a supernet once, then search a Pareto front per target device.")
    from hwnas import __version__

    parser.add_argument("--version", action="version", version=f"hwnas {__version__}")
    commands = Commands(parser.add_subparsers(dest="_command", metavar="COMMAND"))
    for group in GROUPS:
        group.register(commands)
    return parser


def _fail(msg: str, code: int) -> int:
    print(f"hwnas: error: {msg}", file=sys.stderr)
    return code


def _one_line(exc: BaseException) -> str:
    msg = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    lines = str(msg).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hwnas` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    try:
        pre, _ = parser.parse_known_args(argv)
        leaf = getattr(pre, "_parser", None)
        if leaf is not None and getattr(pre, "config", None):
            apply_yaml_defaults(leaf, load_yaml(pre.config), pre.config, getattr(pre, "_types", {}))
        args = parser.parse_args(argv)
    except HwnasError as exc:  # a bad --config file
        return _fail(_one_line(exc), exc.exit_code)
    if getattr(args, "_func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    configure_logging(args.verbose, args.quiet)
    try:
        return int(args._func(args) or 0)
    except HwnasError as exc:
        log.debug("details", exc_info=True)
        return _fail(_one_line(exc), exc.exit_code)
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ConnectionError,
            TimeoutError) as exc:
        log.debug("details", exc_info=True)
        return _fail(_one_line(exc), 1)
    except FloatingPointError as exc:  # the training loss stopped being finite
        return _fail(_one_line(exc), 1)
    except ValueError as exc:  # a value a library refused that hwnas does not classify itself (-v: traceback)
        log.debug("details", exc_info=True)
        return _fail(_one_line(exc), 2)
    except KeyboardInterrupt:
        return _fail("interrupted; finished epochs' checkpoints and cached scores are intact (use --resume)", 130)


if __name__ == "__main__":
    raise SystemExit(main())
