"""A real redis-server on 127.0.0.1 and real `evicap worker` processes, for the distributed batch's tests and
benchmark. Nothing persists: the server runs with ``--save '' --appendonly no`` in a temporary directory."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

EVICAP = str(Path(sys.executable).with_name("evicap"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


class RedisServer:
    """``with RedisServer(tmp) as redis: redis.url`` -- redis://127.0.0.1:PORT/0, stopped on exit."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError("redis-server did not start")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Worker:
    """One `evicap worker` process (its own session: killpg reaches its pool, driver and browsers)."""

    def __init__(self, broker: str, config_home: Path, log: Path, *, name: str, concurrency: int = 1,
                 visibility: float = 600.0, extra: tuple[str, ...] = ()) -> None:
        self.name, self.log, self.config_home = name, log, config_home
        self.public_key = config_home / "evicap" / "signing-key.pem.pub"
        env = {**os.environ, "XDG_CONFIG_HOME": str(config_home)}
        self._log_handle = open(log, "wb")  # noqa: SIM115 -- closed in stop()
        self.proc = subprocess.Popen(
            [EVICAP, "worker", "--broker", broker, "--name", name, "--concurrency", str(concurrency),
             "--visibility-timeout", str(visibility), "--no-timestamp", *extra],
            env=env, stdout=self._log_handle, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def text(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    def wait_ready(self, limit: float = 90) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if f"{self.name}@" in self.text() and " ready." in self.text():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} ended early:\n{self.text()}")
            time.sleep(0.1)
        raise AssertionError(f"worker {self.name} not ready:\n{self.text()}")

    def kill(self) -> None:
        """SIGKILL the whole worker (pool, driver, browsers): a machine that died mid-capture."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # leftovers of the group (a browser that outlived its driver)
        except (ProcessLookupError, PermissionError):
            pass
        self._log_handle.close()
