"""The batch scheduler with an injected capture function: limits, delays, retries, timeouts, stops.

The capture is a fake here on purpose: these tests pin scheduling decisions quickly. The real capture against
real servers is exercised in tests/integration/test_batch.py.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter

import pytest

from evicap.batch.runner import RunSettings, TargetOutcome, Withdrawn, retry_reason, run_batch
from evicap.batch.targets import Target
from evicap.bundle.model import CaptureResult
from evicap.errors import CaptureError, SigningError, UsageError


def targets(*urls: str) -> list[Target]:
    return [Target(url=u, item=f"T{i:04d}", line=i) for i, u in enumerate(urls, start=1)]


def ok(target: Target) -> CaptureResult:
    return CaptureResult(url=target.url, status="complete", bundle=None, error=None, item=target.item)


def failed(target: Target, error: str) -> CaptureResult:
    return CaptureResult(url=target.url, status="failed", bundle=None, error=error, item=target.item)


class Recorder:
    """Collects outcomes and retry notices the way the CLI's progress display would receive them."""

    def __init__(self) -> None:
        self.outcomes: list[TargetOutcome] = []
        self.retries: list[tuple[str, int, float, str]] = []

    def started(self, target: Target, attempt: int) -> None:
        pass

    def retrying(self, target: Target, attempt: int, delay: float, reason: str) -> None:
        self.retries.append((target.item, attempt, delay, reason))

    def finished(self, outcome: TargetOutcome) -> None:
        pass


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


FAST = RunSettings(concurrency=4, per_host=2, retries=2, backoff=0.01, backoff_max=0.02, target_timeout=5)


def test_concurrency_and_per_host_limits_hold_and_every_target_runs_once() -> None:
    in_flight: Counter[str] = Counter()
    peak_host: Counter[str] = Counter()
    peak = 0
    calls: Counter[str] = Counter()

    async def capture(target: Target, attempt: int) -> CaptureResult:
        nonlocal peak
        calls[target.item] += 1
        in_flight[target.host] += 1
        peak = max(peak, sum(in_flight.values()))
        peak_host[target.host] = max(peak_host[target.host], in_flight[target.host])
        await asyncio.sleep(0.02)
        in_flight[target.host] -= 1
        return ok(target)

    urls = [f"https://h{h}.example/{n}" for n in range(5) for h in range(3)]
    outcomes: list[TargetOutcome] = []
    report = run(run_batch(targets(*urls), capture, RunSettings(concurrency=4, per_host=1), on_outcome=outcomes.append))
    assert not report.interrupted and not report.unfinished
    assert len(outcomes) == 15 and set(calls.values()) == {1}
    assert peak == 3  # 4 allowed overall, but only 3 hosts at 1 each
    assert set(peak_host.values()) == {1}


def test_one_slow_host_does_not_hold_up_the_others() -> None:
    order: list[str] = []

    async def capture(target: Target, attempt: int) -> CaptureResult:
        await asyncio.sleep(0.05 if "slow" in target.url else 0.001)
        order.append(target.url)
        return ok(target)

    urls = [
        "https://slow.example/1",
        "https://slow.example/2",
        "https://slow.example/3",
        "https://fast.example/1",
        "https://fast.example/2",
    ]
    run(run_batch(targets(*urls), capture, RunSettings(concurrency=2, per_host=1), on_outcome=lambda o: None))
    assert order.index("https://fast.example/2") < order.index("https://slow.example/2")


def test_host_delay_spaces_starts_on_one_host() -> None:
    starts: list[float] = []

    async def capture(target: Target, attempt: int) -> CaptureResult:
        starts.append(time.monotonic())
        return ok(target)

    urls = [f"https://one.example/{n}" for n in range(3)]
    run(
        run_batch(
            targets(*urls), capture, RunSettings(concurrency=3, per_host=3, host_delay=0.15), on_outcome=lambda o: None
        )
    )
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) == 2 and min(gaps) >= 0.14


def test_transient_failures_are_retried_with_backoff_then_succeed() -> None:
    attempts: Counter[str] = Counter()

    async def capture(target: Target, attempt: int) -> CaptureResult:
        attempts[target.item] += 1
        assert attempt == attempts[target.item]
        if attempt < 3:
            return failed(target, "connection reset by the server (net::ERR_CONNECTION_RESET) for x")
        return ok(target)

    seen = Recorder()
    outcomes: list[TargetOutcome] = []
    run(
        run_batch(
            targets("https://a.example/"),
            capture,
            FAST,
            on_outcome=outcomes.append,
            progress=seen,
            rng=random.Random(1),
        )
    )
    (outcome,) = outcomes
    assert outcome.result.status == "complete" and outcome.attempts == 3
    assert [r[1] for r in seen.retries] == [1, 2]
    assert all("ERR_CONNECTION_RESET" in r[3] for r in seen.retries)


def test_permanent_failures_are_not_retried() -> None:
    statuses = {"https://a.example/gone": 404, "https://a.example/limit": 429, "https://a.example/bug": 500}
    attempts: Counter[str] = Counter()

    async def capture(target: Target, attempt: int) -> CaptureResult:
        attempts[target.url] += 1
        if target.url.endswith("/scheme"):
            raise UsageError("refused URL scheme")
        if target.url.endswith("/tls"):
            return failed(target, "TLS error net::ERR_CERT_AUTHORITY_INVALID for x")
        return CaptureResult(url=target.url, status="partial", bundle=None, error="HTTP error", item=target.item)

    outcomes: list[TargetOutcome] = []
    urls = [*statuses, "https://a.example/scheme", "https://a.example/tls"]
    run(run_batch(targets(*urls), capture, FAST, on_outcome=outcomes.append, http_status=lambda r: statuses.get(r.url)))
    assert set(attempts.values()) == {1}
    assert {o.target.url: o.attempts for o in outcomes} == dict.fromkeys(urls, 1)
    assert "refused URL scheme" in next(o for o in outcomes if o.target.url.endswith("/scheme")).result.error


def test_5xx_gateway_answers_are_retried_until_the_limit() -> None:
    async def capture(target: Target, attempt: int) -> CaptureResult:
        return ok(target)  # the page was captured, but the server said 503

    outcomes: list[TargetOutcome] = []
    run(
        run_batch(
            targets("https://a.example/busy"), capture, FAST, on_outcome=outcomes.append, http_status=lambda r: 503
        )
    )
    assert outcomes[0].attempts == 3 and outcomes[0].http_status == 503


def test_per_target_timeout_counts_as_transient() -> None:
    async def capture(target: Target, attempt: int) -> CaptureResult:
        if attempt == 1:
            await asyncio.sleep(10)
        return ok(target)

    outcomes: list[TargetOutcome] = []
    settings = RunSettings(concurrency=1, retries=1, backoff=0.01, target_timeout=0.1)
    run(run_batch(targets("https://a.example/"), capture, settings, on_outcome=outcomes.append))
    assert outcomes[0].result.status == "complete" and outcomes[0].attempts == 2


def test_stop_lets_captures_in_flight_finish_and_starts_nothing_new() -> None:
    finished: list[str] = []

    async def main() -> object:
        stop = asyncio.Event()

        async def capture(target: Target, attempt: int) -> CaptureResult:
            stop.set()  # "Ctrl-C" as soon as the first capture starts
            await asyncio.sleep(0.05)
            finished.append(target.item)
            return ok(target)

        urls = [f"https://a.example/{n}" for n in range(5)]
        return await run_batch(
            targets(*urls), capture, RunSettings(concurrency=1), on_outcome=lambda o: None, stop=stop
        )

    report = run(main())
    assert finished == ["T0001"]
    assert report.interrupted
    assert [u.target.item for u in report.unfinished] == ["T0002", "T0003", "T0004", "T0005"]


def test_an_attempt_withdrawn_at_a_stop_leaves_its_target_unfinished_and_uncounted() -> None:
    """A distributed task revoked while still queued: not an outcome, not an attempt, captured on --resume."""
    outcomes: list[TargetOutcome] = []

    async def main() -> object:
        stop = asyncio.Event()

        async def capture(target: Target, attempt: int) -> CaptureResult:
            if target.item == "T0001":
                await asyncio.sleep(0.05)  # running on a worker: waited for
                return ok(target)
            stop.set()
            await asyncio.sleep(0.01)
            raise Withdrawn()

        return await run_batch(targets("https://a.example/1", "https://b.example/2", "https://c.example/3"),
                               capture, RunSettings(concurrency=3), on_outcome=outcomes.append, stop=stop)

    report = run(main())
    assert [o.target.item for o in outcomes] == ["T0001"]
    assert report.interrupted
    assert [(u.target.item, u.attempts) for u in report.unfinished] == [("T0002", 0), ("T0003", 0)]


def test_abort_cancels_captures_in_flight_and_reports_them_unfinished() -> None:
    cancelled: list[str] = []

    async def main() -> object:
        stop, abort = asyncio.Event(), asyncio.Event()

        async def capture(target: Target, attempt: int) -> CaptureResult:
            stop.set()
            abort.set()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.append(target.item)
                raise
            return ok(target)

        return await run_batch(
            targets("https://a.example/1", "https://b.example/2"),
            capture,
            RunSettings(concurrency=2),
            on_outcome=lambda o: None,
            stop=stop,
            abort=abort,
        )

    report = run(main())
    assert report.interrupted
    assert "T0001" in cancelled
    assert {u.target.item for u in report.unfinished} == {"T0001", "T0002"}


def test_a_fatal_error_stops_the_batch_and_is_raised() -> None:
    async def capture(target: Target, attempt: int) -> CaptureResult:
        raise SigningError("wrong passphrase")

    with pytest.raises(SigningError):
        run(
            run_batch(
                targets("https://a.example/1", "https://a.example/2"),
                capture,
                RunSettings(concurrency=1),
                on_outcome=lambda o: None,
            )
        )


def test_retry_policy_and_backoff_bounds() -> None:
    result = CaptureResult(url="u", status="failed", bundle=None, error="x (net::ERR_CONNECTION_REFUSED)")
    assert retry_reason(result, None) == "ERR_CONNECTION_REFUSED"
    assert retry_reason(result, 404) is None
    assert retry_reason(CaptureResult(url="u", status="complete", bundle=None, error=None), 502) == "HTTP 502"
    settings = RunSettings(backoff=2, backoff_max=10)
    rng = random.Random(7)
    delays = [settings.retry_delay(n, rng) for n in (1, 2, 3, 4, 5)]
    assert 1 <= delays[0] <= 2 and 2 <= delays[1] <= 4 and 4 <= delays[2] <= 8
    assert all(5 <= d <= 10 for d in delays[3:])


def test_a_capture_that_stops_abnormally_is_retried() -> None:
    async def capture(target: Target, attempt: int) -> CaptureResult:
        if attempt == 1:
            raise CaptureError("capture of x stopped: Target page, context or browser has been closed")
        return ok(target)

    outcomes: list[TargetOutcome] = []
    run(run_batch(targets("https://a.example/"), capture, FAST, on_outcome=outcomes.append))
    assert outcomes[0].result.status == "complete" and outcomes[0].attempts == 2
