"""`rasp2d` command line: one sub-command per module in this package.

Each sub-command module defines ``add_arguments(parser)`` and ``run(args) -> int``; modules are
imported only when their command runs, so `rasp2d compile` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "compile": ("rasp2d.cli.compile_cmd", "compile a .rasp2d program into transformer weights"),
    "run": ("rasp2d.cli.run_cmd", "run a compiled model on an input prompt"),
    "inspect": ("rasp2d.cli.inspect_cmd", "show which expression lives in which layer, head and dimension"),
    "exec": ("rasp2d.cli.exec_cmd", "execute a C / WAT / WASM program (reference interpreter or inside the transformer)"),
    "demo": ("rasp2d.cli.demo_cmd", "run a bundled C program inside the transformer, end to end"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rasp2d", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            importlib.import_module(module).add_arguments(p)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            p.set_defaults(_missing=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "_missing", False):
        print(f"rasp2d {args.command}: not available in this build", file=sys.stderr)
        return 2
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
