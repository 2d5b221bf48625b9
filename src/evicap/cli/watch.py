"""`evicap watch`: re-capture targets on a schedule and report what changed between captures.

Exit codes: 0 finished its rounds, or stopped cleanly by Ctrl-C / SIGTERM (its state is saved: run the same
command again to resume the schedule); 2 usage or environment problem.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import click
from rich.markup import escape

from evicap.batch.case import set_aside_staging
from evicap.batch.job import SharedBrowser, browser_capture
from evicap.batch.resume import case_lock, ensure_case_dir
from evicap.batch.runner import RunSettings, TargetOutcome
from evicap.batch.targets import Target, load_targets
from evicap.cli.options import capture_options
from evicap.cli.output import Output
from evicap.watch.runner import Watch, WatchEvents, WatchSettings
from evicap.watch.state import CHANGES, parse_duration

IDLE_BROWSER_CLOSE = 60.0  # seconds of waiting after which the browser is closed until the next round


def describe(change: dict[str, Any]) -> str:
    kind = change["change"]
    subject = f" {change['post_id']}" if change.get("post_id") else ""
    detail = change.get("detail") or change.get("text") or change.get("after") or change.get("url") or ""
    return f"{change['item']} {kind}{subject}: {detail}".rstrip(": ")


class _Events(WatchEvents):
    def __init__(self, out: Output, as_json: bool) -> None:
        self.out, self.as_json = out, as_json
        self.on_idle: Callable[[float], None] | None = None  # told how long the watch will now sleep

    def captured(self, target: Target, outcome: TargetOutcome, round_number: int) -> None:
        result = outcome.result
        where = result.bundle or result.error or ""
        self.out.info(f"round {round_number} {target.item} {result.status}: {escape(str(where))}")

    def changed(self, change: dict[str, Any]) -> None:
        if self.as_json:
            self.out.json_line(change)
        self.out.err.print(f"[bold]CHANGE[/] {escape(describe(change))}")

    def waiting(self, seconds: float) -> None:
        self.out.info(f"next capture in {seconds:.0f} s")
        if self.on_idle is not None:
            self.on_idle(seconds)


@click.command()
@click.argument("targets_file", metavar="TARGETS")
@click.option("--every", "every", required=True, help="Time between two captures of a target: 30s, 15m, 6h, 1d.")
@click.option("--rounds", type=click.IntRange(1, 1_000_000),
              help="Captures per target in total (counted across restarts); default: until stopped.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=2, show_default=True, help="Captures at once.")
@click.option("--per-host", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Captures in flight on one host.")
@click.option("--host-delay", type=click.FloatRange(0, 3600), default=0.0, show_default=True,
              help="Seconds between two capture starts on one host.")
@capture_options
def watch(targets_file: str, every: str, rounds: int | None, concurrency: int, per_host: int, host_delay: float,
          **params: Any) -> None:  # fmt: skip
    """Capture each URL of TARGETS every DURATION into --output CASE_DIR and log the changes between captures
    (new, edited, deleted or unavailable posts, account gone, walls, media, page text) to
    CASE_DIR/watch-changes.jsonl."""
    from evicap.cli.runner import build_plan

    out = Output()
    interval = parse_duration(every)
    targets = load_targets(targets_file)
    for problem in targets.problems:
        out.warn(f"{escape(targets.source)} {escape(str(problem))}")
    plan = build_plan(params)
    directory = ensure_case_dir(plan.output)
    settings = WatchSettings(
        every=interval,
        rounds=rounds,
        run=RunSettings(
            concurrency=concurrency, per_host=per_host, host_delay=host_delay,
            target_timeout=plan.options.timeout * 2 + 60,
        ),
    )
    events = _Events(out, bool(params.get("as_json")))
    with case_lock(directory):
        for note in set_aside_staging(directory):  # never deleted: a half-written capture is kept aside
            out.info(note)
        ended = asyncio.run(_main(out, directory, list(targets.targets), plan, settings, events))
    if ended:
        out.info(f"done: every target has its {rounds} round(s); changes in {directory / CHANGES}")
    else:
        out.warn(f"stopped; the schedule is saved in {directory}: run the same command to resume")


async def _main(out: Output, directory: Any, targets: list[Target], plan: Any, settings: WatchSettings,
                events: _Events) -> bool:  # fmt: skip
    stop, abort = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            out.warn("second interrupt: discarding captures in flight")
            abort.set()
        else:
            out.warn("stopping: finishing captures in flight (interrupt again to discard them)")
            stop.set()

    loop.add_signal_handler(signal.SIGINT, on_signal)
    loop.add_signal_handler(signal.SIGTERM, on_signal)
    shared = SharedBrowser(plan.browser)

    closing: set[asyncio.Task[None]] = set()

    def idle(seconds: float) -> None:  # a long sleep ahead: give the browser's memory back until the next round
        if seconds > IDLE_BROWSER_CLOSE:
            task = loop.create_task(shared.close())
            closing.add(task)
            task.add_done_callback(closing.discard)

    events.on_idle = idle
    try:
        runner = Watch(directory, targets, browser_capture(shared, plan.options, directory, plan.sealing), settings,
                       events)  # fmt: skip
        return await runner.run(stop, abort)
    finally:
        await shared.close()
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
