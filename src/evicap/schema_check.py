"""JSON Schema (draft 2020-12) checks for evicap's own documents: manifests and profiles.

Two libraries, one verdict. python-jsonschema is the reference: what it accepts is valid, and its errors are the
ones evicap reports, word for word. jsonschema-rs (compiled, about 500 times faster on a manifest, and it does not
cost the 0.2 s of CPU that importing python-jsonschema costs every process) is asked first; when it calls a
document valid, that is the answer and python-jsonschema is never imported. Anything else (invalid, a value it
cannot read, jsonschema-rs missing on this platform) goes to python-jsonschema, which decides. So the faster
library can only ever save time: where the two differ (Python's ``$`` also matches before a final newline, for
example), the document is judged by python-jsonschema. The one way they could disagree in the dangerous
direction, jsonschema-rs accepting what python-jsonschema refuses, is what tests/test_manifest_schema.py and
tests/test_profiles.py look for over every broken variant of a manifest and of each built-in profile. (Drafted
requests are checked by python-jsonschema alone: they are rare, and need every error listed.)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema


class SchemaCheck:
    """One schema, loaded on first use. ``reference`` optionally gives python-jsonschema a transformed copy of the
    schema that finds the same errors faster (the manifest inlines its references)."""

    def __init__(self, load: Callable[[], dict[str, Any]],
                 reference: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self._load = load
        self._reference = reference

    @cached_property
    def schema(self) -> dict[str, Any]:
        return self._load()

    @cached_property
    def fast(self) -> Any:
        """The jsonschema-rs validator, None where jsonschema-rs is not installed. Formats are annotations, as
        python-jsonschema treats them without a format checker; offline: no reference is ever fetched."""
        try:
            import jsonschema_rs
        except ImportError:
            return None
        return jsonschema_rs.Draft202012Validator(self.schema, validate_formats=False, offline=True)

    @cached_property
    def reference(self) -> jsonschema.Draft202012Validator:
        import jsonschema

        schema = self.schema if self._reference is None else self._reference(self.schema)
        return jsonschema.Draft202012Validator(schema)

    def surely_valid(self, document: Any) -> bool:
        """True when jsonschema-rs accepts ``document``; False means only "ask python-jsonschema"."""
        if self.fast is None:
            return False
        try:
            return bool(self.fast.is_valid(document))
        except (ValueError, TypeError, OverflowError, RecursionError):  # a value it cannot convert to JSON
            return False

    def errors(self, document: Any) -> list[jsonschema.ValidationError]:
        """Every error python-jsonschema finds in ``document``: [] for a valid one (mostly without asking it)."""
        if self.surely_valid(document):
            return []
        return list(self.reference.iter_errors(document))
