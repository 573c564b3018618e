"""The `nnrecipe` command: parses arguments, calls the library, maps errors to exit codes.

Exit codes: 0 success; 2 bad input (one line ``error: <what> (<where>, <how to fix>)`` on stderr,
nothing written); 3 training diverged (NaN/Inf loss; the run is saved with the last good weights);
130 interrupted.

``parser.py`` holds the subcommands and their flags; ``train.py`` the handlers that train or
inspect models, ``use.py`` those that use a trained run; ``summaries.py`` the console text of
results. Each handler calls the library and prints.

Console output belongs to the CLI alone: library functions return data, and what they have to say
while they run (health warnings, a torch.compile fallback, word2vec epoch lines) goes to
`logging`, on module loggers below ``nnrecipe`` (``logging.getLogger(__name__)``). `main` hangs one
handler on the ``nnrecipe`` logger that writes each record's message, unchanged, as one line on
stderr, at INFO and above. Why logging rather than `warnings` or a callback argument: the messages
are progress reports as much as warnings (`warnings` would show a file:line and, with its default
filter, drop a repeated message, while the epoch lines are not warnings at all); a callback would
have to be threaded through every fit path down to the callbacks and the compile wrapper. A
module logger needs no plumbing, lets a program route or silence the messages with the standard
logging configuration, and without any configuration Python's last-resort handler still prints
WARNING records (the health and compile warnings) on stderr; INFO ones (epoch lines) need
``logging.basicConfig(level=logging.INFO)`` there.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager

from nnrecipe.cli import train, use
from nnrecipe.cli.parser import EXIT_BAD_INPUT, EXIT_INTERRUPTED, build_parser
from nnrecipe.errors import UserError

COMMANDS = {"fit": train._cmd_fit, "summary": train._cmd_summary, "predict": use._cmd_predict,
            "sample": use._cmd_sample, "calibrate": use._cmd_calibrate, "attack": use._cmd_attack,
            "compress": use._cmd_compress, "evaluate": use._cmd_evaluate, "schedule": train._cmd_schedule,
            "report": use._cmd_report, "doctor": train._cmd_doctor, "similar": use._cmd_similar,
            "analogy": use._cmd_analogy, "export": use._cmd_export,
            "curvature": use._cmd_curvature, "bowl": use._cmd_bowl, "embed": use._cmd_embed,
            "runs": use._cmd_runs, "config": train._cmd_config}


class _StderrLines(logging.Handler):
    """Each record's message as one line on the *current* ``sys.stderr`` (looked up per record:
    while the rich progress bar is live, stderr is rich's proxy, which prints above the bar)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(record.getMessage() + "\n")
        except Exception:  # noqa: BLE001 — logging's own policy for a failing handler
            self.handleError(record)


@contextmanager
def _library_messages_on_stderr():
    """For the duration of one command: the ``nnrecipe`` loggers' INFO and above on stderr."""
    logger = logging.getLogger("nnrecipe")
    handler, level = _StderrLines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _library_messages_on_stderr():
            return COMMANDS[args.command](args)
    except UserError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted (keyboard, nothing was written)\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
