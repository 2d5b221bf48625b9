"""evicap: acquire web and social-media pages as verifiable digital evidence bundles."""

# The one place the version is written: pyproject.toml reads it from here (tool.setuptools.dynamic), so no
# command pays for importlib.metadata (about 0.1 s) to learn it, and a source tree knows its own version.
__version__ = "0.1.0"

TOOL_NAME = "evicap"
