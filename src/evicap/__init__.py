"""evicap: acquire web and social-media pages as verifiable digital evidence bundles."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("evicap")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

TOOL_NAME = "evicap"
