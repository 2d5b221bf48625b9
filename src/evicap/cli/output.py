"""Human output on stderr (rich), machine output (JSON lines) on stdout. Only cli/ uses this."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape


class Output:
    """Where the CLI writes: `err` is a rich console on stderr for people, `json_line` writes stdout."""

    def __init__(self) -> None:
        # Not a terminal (CI logs, pipes): wide enough that tables of paths and hashes stay readable.
        width = None if sys.stderr.isatty() else 160
        self.err = Console(stderr=True, highlight=False, width=width)

    def error(self, message: str) -> None:
        self.err.print(f"[bold red]error:[/] {escape(message)}")

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/] {escape(message)}")

    def info(self, message: str) -> None:
        self.err.print(escape(message))

    @staticmethod
    def json_line(obj: Any) -> None:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n")
        sys.stdout.flush()
