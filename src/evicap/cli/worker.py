"""`evicap worker`: capture the targets a distributed `evicap batch --broker` sends, on this machine.

The worker seals every bundle with its own key (``--key`` or the configured one, as `evicap capture` does) and
records itself (host name, worker id, pid) in each bundle's custody log and manifest. What to capture (case,
investigator, timeout, ...) comes with each task; how this machine captures (browser, sandbox, proxy, allowed
networks, time-stamp authorities) is set here. Exit codes: 0 stopped cleanly; 2 usage or environment problem
(bad or unreachable broker, no usable key or browser, Celery not installed).
"""

from __future__ import annotations

import os
import socket
from typing import Any

import click

from evicap.cli.options import parse_size
from evicap.cli.output import Output
from evicap.errors import EnvironmentProblem


@click.command()
@click.option("--broker", required=True, metavar="URL", help="Redis broker, redis://HOST:PORT/DB.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Captures at once on this machine (one browser per pool process).")
@click.option("--name", help="Worker id recorded in each bundle (default evicap-PID; @HOSTNAME is added).")
@click.option("--visibility-timeout", type=click.FloatRange(10, 7 * 86400), default=600.0, show_default=True,
              help="Seconds before a target whose worker died is given to another worker; must exceed the "
                   "longest attempt (--timeout + 20 + 120 by default).")
@click.option("--investigator", help="Who runs this worker (custody log actor; default from config).")
@click.option("--proxy", help="Proxy URL this machine captures through (credentials never recorded).")
@click.option("--allow-network", "allow_networks", multiple=True, metavar="CIDR",
              help="Let pages reach this internal network (repeatable).")
@click.option("--no-sandbox", is_flag=True, help="Run the browser without Chromium's sandbox (warned, recorded).")
@click.option("--session", help="Saved login session on this machine to use for every target.")
@click.option("--match-list", "match_list", multiple=True, type=click.Path(dir_okay=False),
              help="Hash list to match media against at capture time (repeatable).")
@click.option("--browser", "browser_path", type=click.Path(dir_okay=False), help="Browser executable.")
@click.option("--key", type=click.Path(dir_okay=False), help="Signing key of this worker (PKCS#8 PEM, Ed25519).")
@click.option("--tsa", multiple=True, help="RFC 3161 time-stamp authority URL (repeatable, tried in order).")
@click.option("--tsa-ca", multiple=True, type=click.Path(dir_okay=False), help="Trust anchor PEM for TSAs.")
@click.option("--tsa-all", is_flag=True, help="Ask every time-stamp authority and keep every valid token.")
@click.option("--no-timestamp", is_flag=True, help="Do not request a trusted timestamp.")
def worker(broker: str, concurrency: int, name: str | None, visibility_timeout: float, **params: Any) -> None:
    """Run captures for `evicap batch --broker URL` until stopped (Ctrl-C)."""
    from evicap.cli.runner import build_plan

    try:
        from evicap.batch import tasks
    except ImportError as exc:
        raise EnvironmentProblem(f"evicap worker needs Celery: {exc}",
                                 hint="pip install 'evicap[distributed]'") from None
    out = Output()
    app = tasks.connect(broker, visibility_timeout=visibility_timeout)
    plan = build_plan({**params, "timeout": 60.0, "viewport": (1280, 900), "output": ".",
                       "max_media_size": parse_size(None, None, "512M")})
    if plan.key_created:
        out.info(f"created a signing key for this worker at {plan.key_created} (public key beside it); back it up")
    node = name or f"evicap-{os.getpid()}"
    if "@" not in node:  # Celery's node name form, recorded as is in every bundle: worker id @ machine
        node = f"{node}@{socket.gethostname()}"
    runtime = tasks.WorkerRuntime(node, plan.options, plan.browser, plan.sealing, plan.browser_user)
    tasks.register(app, runtime)
    out.info(f"worker {node}: {concurrency} at once, key {plan.sealing.signer.fingerprint[:16]}…, broker "
             f"{tasks.broker_display(broker)}")
    tasks.run_worker(app, name=node, concurrency=concurrency)
