"""`evicap batch`: a target list in, one sealed bundle per target and a sealed case index out.

Exit codes: 0 every target complete; 1 any target partial or failed, or a line of the list skipped;
2 usage or environment problem; 130 interrupted (Ctrl-C): run again with --resume to finish.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys
from typing import Any

import click
from rich.markup import escape

from evicap.batch.capacity import default_concurrency
from evicap.batch.case import close_case, open_case, record_outcome
from evicap.batch.index import CaseIndex
from evicap.batch.job import SharedBrowser, batch_target_timeout, browser_capture
from evicap.batch.resume import case_lock, ensure_case_dir, reconcile
from evicap.batch.runner import RunReport, RunSettings, run_batch
from evicap.batch.targets import FORMATS, Target, load_targets
from evicap.cli.batch_progress import make_progress
from evicap.cli.options import capture_options
from evicap.cli.output import Output
from evicap.errors import EnvironmentProblem, UsageError

INTERRUPTED = 130


@click.command()
@click.argument("targets_file", metavar="TARGETS")
@click.option("--concurrency", type=click.IntRange(1, 4096),
              help="Captures at once, at most 64 (default: 3 per core, as memory allows); with --broker, tasks in "
              "flight (default 32).")
@click.option(
    "--per-host", type=click.IntRange(1, 64), default=6, show_default=True,
    help="Captures in flight on one host (six tabs, as many as a browser opens connections: docs/batch.md)."
)
@click.option(
    "--host-delay",
    type=click.FloatRange(0, 3600),
    default=0.0,
    show_default=True,
    help="Seconds between two capture starts on one host.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=2,
    show_default=True,
    help="Extra attempts for transient failures (connection errors, timeouts, HTTP 502/503/504).",
)
@click.option(
    "--retry-backoff",
    type=click.FloatRange(0, 3600),
    default=2.0,
    show_default=True,
    help="Seconds before the first retry; doubled for each further one, with jitter.",
)
@click.option(
    "--target-timeout",
    type=click.FloatRange(1, 86400),
    help="Hang guard in seconds for one attempt (default: --timeout + sealing margin + 120). A capture ends at "
    "--timeout by itself and seals what it has; this only stops one that hangs (its staging is kept).",
)
@click.option("--resume", is_flag=True, help="Continue a batch in DIR: keep complete bundles, capture the rest.")
@click.option(
    "--format",
    "list_format",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="Target list format (auto: from the extension or the content).",
)
@click.option("--no-report", is_flag=True, help="Do not write the case report (reports/case-report.en.*) at the end.")
@click.option("--broker", metavar="URL", help="Send the captures to `evicap worker` processes through this Redis "
              "broker (redis://HOST:PORT/DB); DIR must be the same shared directory on every machine.")
@capture_options
def batch(
    targets_file: str,
    concurrency: int | None,
    per_host: int,
    host_delay: float,
    retries: int,
    retry_backoff: float,
    target_timeout: float | None,
    resume: bool,
    list_format: str,
    broker: str | None,
    **params: Any,
) -> None:
    """Capture every URL of TARGETS (.txt, .csv, .yaml, or - for stdin) into DIR, with a sealed case index."""
    from evicap.cli.runner import build_plan

    out = Output()
    as_json = bool(params.get("as_json"))
    case_id = params.get("case")
    if not case_id:
        raise UsageError("evicap batch needs --case ID", hint="the case index and every bundle name the case")
    if concurrency and concurrency > LOCAL_MAX and not broker:
        raise UsageError(f"--concurrency {concurrency}: at most {LOCAL_MAX} on one machine",
                         hint="more needs --broker and evicap worker machines")
    remote = _remote_app(broker, params) if broker else None
    targets = load_targets(targets_file, fmt=None if list_format == "auto" else list_format)  # type: ignore[arg-type]
    for problem in targets.problems:
        out.warn(f"{escape(targets.source)} {escape(str(problem))}")
    plan = build_plan(params)
    if plan.key_created:
        out.info(f"created a signing key for you at {plan.key_created} (public key beside it); back it up")
    directory = ensure_case_dir(plan.output)
    settings = RunSettings(
        concurrency=concurrency or default_concurrency(),
        per_host=per_host,
        host_delay=host_delay,
        retries=retries,
        backoff=retry_backoff,
        target_timeout=target_timeout or batch_target_timeout(plan.options.timeout),
    )
    if remote is not None and not concurrency:
        settings = dataclasses.replace(settings, concurrency=REMOTE_IN_FLIGHT)
    with case_lock(directory):
        opened = open_case(directory, case_id, targets, resume)
        if opened.nothing_to_do:
            out.info(f"all {len(targets.targets)} target(s) are complete and the case index is sealed; nothing to do")
            sys.exit(1 if targets.problems else 0)
        for note in opened.notes:
            out.info(escape(note))
        index = opened.index
        todo = [t for t in targets.targets if index.entries[t.item].status != "complete"]
        done_before = len(targets.targets) - len(todo)
        if done_before:
            out.info(f"{done_before} target(s) already complete in {directory}; capturing {len(todo)}")
        report = _run(out, index, todo, plan, settings, as_json, total=len(targets.targets), done=done_before,
                      remote=remote)
        if remote is not None:  # a late copy of an attempt the run gave up on (hung or dead worker): listed too
            for note in reconcile(index):
                out.info(escape(note))
        _finish(out, index, report, plan, as_json)
        if not report.interrupted and not params.get("no_report"):
            from evicap.cli.report import write_after_capture

            write_after_capture(out, [directory], plan.sealing, browser_path=plan.browser.path)
    summary = index.summary()
    if report.interrupted:
        out.warn(f"interrupted: {summary['pending']} target(s) not captured; run again with --resume to finish")
        sys.exit(INTERRUPTED)
    bad = summary["partial"] + summary["failed"] + summary["pending"]
    sys.exit(1 if bad or targets.problems else 0)


def _run(
    out: Output,
    index: CaseIndex,
    todo: list[Target],
    plan: Any,
    settings: RunSettings,
    as_json: bool,
    *,
    total: int,
    done: int,
    remote: Any = None,
) -> RunReport:
    async def main() -> RunReport:
        stop, abort = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_sigint() -> None:
            if stop.is_set():
                out.warn("second interrupt: discarding captures in flight")
                abort.set()
            else:
                out.warn("interrupt: finishing captures in flight (Ctrl-C again to discard them)")
                stop.set()

        loop.add_signal_handler(signal.SIGINT, on_sigint)
        loop.add_signal_handler(signal.SIGTERM, on_sigint)
        shared = SharedBrowser(plan.browser, no_sandbox=plan.options.no_sandbox, browser_user=plan.browser_user)
        progress = make_progress(out, as_json, total=total, done=done)
        sender: Any = None
        try:
            with progress:
                if remote is not None:  # the workers capture (batch.distributed)
                    from evicap.batch.distributed import remote_capture

                    sender, run_settings = remote_capture(remote, index, plan.options, settings, stop)
                    capture = sender.capture_fn()
                else:
                    capture = browser_capture(shared, plan.options, index.directory, plan.sealing)
                    run_settings = settings
                return await run_batch(
                    todo,
                    capture,
                    run_settings,
                    on_outcome=lambda outcome: record_outcome(index, outcome),
                    progress=progress,
                    stop=stop,
                    abort=abort,
                )
        finally:
            if sender is not None and sender.withdrawn:
                out.warn(f"revoked {sender.withdrawn} queued task(s) no worker had started; their targets stay "
                         "pending")
            await shared.close()
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGTERM)

    return asyncio.run(main())


LOCAL_MAX = 64  # captures at once in one process
REMOTE_IN_FLIGHT = 32  # --broker: tasks in flight at once by default (queued or running on the workers)
WORKER_OWN = ("proxy", "session", "match_list", "allow_networks", "no_sandbox")


def _remote_app(broker: str, params: dict[str, Any]) -> Any:
    """The Celery app of a distributed batch, its broker reached now (a wrong URL is one line, exit 2)."""
    given = [name for name in WORKER_OWN if params.get(name)]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UsageError(f"{flags}: with --broker these belong to each `evicap worker`, not to the batch")
    try:
        from evicap.batch import tasks
    except ImportError as exc:
        raise EnvironmentProblem(f"--broker needs Celery: {exc}", hint="pip install 'evicap[distributed]'") from None
    return tasks.connect(broker)


def _finish(out: Output, index: CaseIndex, report: RunReport, plan: Any, as_json: bool) -> None:
    sealed = close_case(index, report, plan.sealing)
    summary = index.summary()
    line = ", ".join(f"{v} {k}" for k, v in summary.items() if k != "total" and v)
    out.info(f"case index {index.path}: {summary['total']} target(s): {line}")
    if sealed is None:  # interrupted: the index stays open for --resume
        return
    for warning in sealed.warnings:
        out.warn(escape(warning))
    stamped = f", timestamped by {sealed.tsa_url}" if sealed.timestamped else ", not timestamped"
    out.info(f"case index sealed (SHA-256 {sealed.index_sha256}{stamped})")
    if as_json:
        out.json_line(
            {
                "event": "index",
                "path": str(index.path),
                "sha256": sealed.index_sha256,
                "timestamped": sealed.timestamped,
                "summary": summary,
            }
        )
