"""One error tree for evicap.

Every failure a user can cause or meet is an ``EvicapError``. The CLI catches it once, prints
``str(error)`` as one red line (plus ``hint`` when there is one) and exits with ``exit_code``.
Core modules never print and never exit.

    EvicapError                 exit 2 unless a subclass says otherwise
    ├── UsageError              bad arguments, bad URL, bad target list (exit 2)
    ├── EnvironmentProblem      no browser, unwritable output, missing tool (exit 2)
    ├── ConfigError             bad config file / profile file: names file and key (exit 2)
    ├── ProfileError            profile schema or step failure (exit 2 when loading)
    ├── CaptureError            the capture itself failed: DNS, refused, TLS, timeout (exit 1)
    ├── BundleError             a bundle cannot be written, read or published (exit 1)
    ├── SigningError            key missing/unreadable/wrong type, wrong passphrase (exit 2)
    ├── TimestampError          time-stamp authority down, garbage, wrong nonce/imprint, untrusted (exit 1)
    └── VerificationError       verify cannot run on the input at all (exit 2); failed checks are
                                reported as results, not raised
"""

from __future__ import annotations


def first_line(error: BaseException | str, limit: int = 300, *, typed: bool = False) -> str:
    """The first line of an exception's message, or of a text: how foreign errors reach a report.

    An exception with no message gives its type's name; ``typed`` puts the type's name before the line
    (``TimeoutError: ...``) where the kind of failure matters to the reader. An empty text gives ""."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    if isinstance(error, BaseException):
        name = type(error).__name__
        line = f"{name}: {line}" if typed else (line or name)
    return line[:limit]


class EvicapError(Exception):
    """Base of every error evicap reports to a user."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def one_line(self) -> str:
        """The message flattened to a single line, as the CLI prints it."""
        text = " ".join(self.message.split())
        return f"{text} ({self.hint})" if self.hint else text


class UsageError(EvicapError):
    exit_code = 2


class EnvironmentProblem(EvicapError):
    exit_code = 2


class ConfigError(EvicapError):
    exit_code = 2


class ProfileError(EvicapError):
    exit_code = 2


class CaptureError(EvicapError):
    """The target could not be captured (network, TLS, browser crash, timeout)."""

    exit_code = 1

    def __init__(self, message: str, *, url: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.url = url


class BundleError(EvicapError):
    exit_code = 1

    def __init__(self, message: str, *, path: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class SigningError(EvicapError):
    exit_code = 2


class TimestampError(EvicapError):
    exit_code = 1


class VerificationError(EvicapError):
    exit_code = 2
