"""The `nnrecipe` command: parses arguments, calls the library, maps errors to exit codes.

Exit codes: 0 success; 2 bad input (one line ``error: <what> (<where>, <how to fix>)`` on stderr,
nothing written); 3 training diverged (NaN/Inf loss; the run is saved with the last good weights);
130 interrupted.

``parser.py`` holds the subcommands and their flags; ``train.py`` the handlers that train or
inspect models, ``use.py`` those that use a trained run. Each handler calls the library and prints.
"""

from __future__ import annotations

import sys

from nnrecipe.cli import train, use
from nnrecipe.cli.parser import EXIT_BAD_INPUT, EXIT_INTERRUPTED, build_parser
from nnrecipe.errors import UserError

COMMANDS = {"fit": train._cmd_fit, "summary": train._cmd_summary, "predict": use._cmd_predict,
            "sample": use._cmd_sample, "calibrate": use._cmd_calibrate, "attack": use._cmd_attack,
            "compress": use._cmd_compress, "evaluate": use._cmd_evaluate, "schedule": train._cmd_schedule,
            "report": use._cmd_report, "doctor": train._cmd_doctor, "similar": use._cmd_similar,
            "analogy": use._cmd_analogy, "export": use._cmd_export}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted (keyboard, nothing was written)\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
