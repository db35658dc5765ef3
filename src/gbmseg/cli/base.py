"""The command registry: each command declares its arguments next to its body.

Flags that set a parameter (``--out``, ``--tile``, ``--pretrained``...) are turned into
``section.key=value`` overrides at parse time and join ``-S``: one override channel, so a
command body only ever sees the parsed ``Params``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from gbmseg.config import Params

EXIT_BAD_INPUT, EXIT_FAILED = 2, 1
Arguments = Callable[[argparse.ArgumentParser], None]
Body = Callable[[argparse.Namespace, Params], dict]


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    body: Body
    arguments: Arguments | None = None
    epilog: str = ""


COMMANDS: dict[str, Command] = {}


def command(name: str, summary: str, arguments: Arguments | None = None, epilog: str = ""):
    """Register a subcommand with its one-line help and its own arguments."""

    def deco(fn: Body) -> Body:
        COMMANDS[name] = Command(name, summary, fn, arguments, epilog)
        return fn

    return deco


class SetParam(argparse.Action):
    """Store ``--flag VALUE`` as the override ``KEY=VALUE`` (``KEY`` may name other
    arguments, e.g. ``sets.{item}.raw``, filled in after parsing)."""

    def __init__(self, option_strings, dest, key: str, const=None, **kw):
        self.key = key
        super().__init__(option_strings, dest, const=const, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        value = self.const if self.nargs == 0 else values
        namespace.param_flags = [*getattr(namespace, "param_flags", []), (self.key, value)]


def param(sp: argparse.ArgumentParser, flag: str, key: str, help: str, **kw) -> None:
    """A flag that overrides params key ``key``."""
    shown = key.replace("{item}", "SET")
    sp.add_argument(flag, action=SetParam, key=key, help=f"{help} (sets {shown})", **kw)


def switch(sp: argparse.ArgumentParser, flag: str, key: str, help: str) -> None:
    """A flag that sets params key ``key`` to true."""
    sp.add_argument(
        flag, action=SetParam, key=key, nargs=0, const="true", help=f"{help} (sets {key})"
    )


def overrides(args: argparse.Namespace) -> list[str]:
    """``-S`` items followed by the parameter flags, as ``key=value`` strings."""
    flags = [
        f"{key.format(**vars(args))}={value}" for key, value in getattr(args, "param_flags", [])
    ]
    return [*args.set, *flags]


def item_argument(sp: argparse.ArgumentParser, default: str | None = "target") -> None:
    sp.add_argument(
        "item",
        nargs="?" if default else None,
        default=default,
        metavar="SET",
        help="a labelled set named under `sets` in params.yaml"
        + (f" (default: {default})" if default else ""),
    )
