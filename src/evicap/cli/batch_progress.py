"""What `evicap batch` shows while it runs: a rich bar on a terminal, plain lines otherwise, JSON lines on request.

All three take the same calls (started / retrying / finished) from the scheduler; none of them changes what is
captured. The rich bar counts done, failed and retrying targets and shows the rate and the time left.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from evicap.batch.runner import TargetOutcome
from evicap.batch.targets import Target
from evicap.cli.output import Output

STYLE = {"complete": "green", "partial": "yellow", "failed": "red"}


def outcome_json(outcome: TargetOutcome) -> dict[str, Any]:
    result = outcome.result
    return {
        "item": outcome.target.item,
        "url": outcome.target.url,
        "status": result.status,
        "reason": result.error,
        "attempts": outcome.attempts,
        "bundle": result.bundle,
        "manifest_sha256": result.manifest_sha256,
        "http_status": outcome.http_status,
        "warnings": [w.to_json() for w in result.warnings],
    }


class _Counts:
    def __init__(self, total: int, done: int) -> None:
        self.total, self.done, self.failed, self.retrying = total, done, 0, 0
        self.start = time.monotonic()
        self.finished_here = 0

    def rate(self) -> float:
        """Targets finished per minute in this run."""
        elapsed = max(1e-6, time.monotonic() - self.start)
        return self.finished_here * 60 / elapsed


class PlainProgress:
    """One line per event on stderr (not a terminal, or --json where stdout carries the results)."""

    def __init__(self, out: Output, as_json: bool, total: int, done: int) -> None:
        self.out, self.as_json = out, as_json
        self.counts = _Counts(total, done)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass

    def started(self, target: Target, attempt: int) -> None:
        if attempt > 1:
            self.counts.retrying = max(0, self.counts.retrying - 1)

    def retrying(self, target: Target, attempt: int, delay: float, reason: str) -> None:
        self.counts.retrying += 1
        self.out.info(
            f"retry   {target.item} {escape(target.url)}: {escape(reason)}; attempt {attempt + 1} in {delay:.1f} s"
        )

    def finished(self, outcome: TargetOutcome) -> None:
        c = self.counts
        c.done += 1
        c.finished_here += 1
        c.failed += outcome.result.status != "complete"
        if self.as_json:
            self.out.json_line(outcome_json(outcome))
        result = outcome.result
        reason = f": {escape(result.error)}" if result.error else ""
        self.out.info(
            f"[{c.done}/{c.total}] {result.status:<8} {outcome.target.item} {escape(outcome.target.url)}"
            f"{reason} ({c.rate():.0f}/min)"
        )


class RichProgress(PlainProgress):
    """A live bar on a terminal; finished targets that are not complete are printed above it."""

    def __init__(self, out: Output, as_json: bool, total: int, done: int) -> None:
        super().__init__(out, as_json, total, done)
        self.bar = Progress(
            TextColumn("[bold]batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            console=out.err,
            transient=False,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self.bar.__enter__()
        self.task = self.bar.add_task(
            "batch", total=self.counts.total, completed=self.counts.done, detail=self._detail()
        )
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.bar.__exit__(exc_type, exc, tb)

    def _detail(self) -> str:
        c = self.counts
        return (
            f"[green]{c.done - c.failed} done[/] [red]{c.failed} failed[/] "
            f"[yellow]{c.retrying} retrying[/] {c.rate():.0f}/min"
        )

    def _refresh(self) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=self.counts.done, detail=self._detail())

    def started(self, target: Target, attempt: int) -> None:
        super().started(target, attempt)
        self._refresh()

    def retrying(self, target: Target, attempt: int, delay: float, reason: str) -> None:
        self.counts.retrying += 1
        self._refresh()

    def finished(self, outcome: TargetOutcome) -> None:
        c = self.counts
        c.done += 1
        c.finished_here += 1
        c.failed += outcome.result.status != "complete"
        if self.as_json:
            self.out.json_line(outcome_json(outcome))
        result = outcome.result
        if result.status != "complete":
            colour = STYLE[result.status]
            self.bar.console.print(
                f"[{colour}]{result.status}[/] {outcome.target.item} "
                f"{escape(outcome.target.url)}: {escape(result.error or '')}"
            )
        self._refresh()


def make_progress(out: Output, as_json: bool, *, total: int, done: int) -> PlainProgress:
    if out.err.is_terminal:
        return RichProgress(out, as_json, total, done)
    return PlainProgress(out, as_json, total, done)
