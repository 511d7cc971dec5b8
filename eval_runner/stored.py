"""The base of every record stored as JSON (and of its parts): one encoding of it to bytes, and one parse back."""

from __future__ import annotations

import json
import math
from typing import ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from eval_runner.errors import DataError


class RecordPart(BaseModel):
    """A part of a stored record: frozen, and no field the schema does not name (a typo is an error)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class StoredRecord(RecordPart):
    """A frozen record whose bytes are an identity: equal content always encodes to equal bytes.

    Hashes of these bytes are content identities (a manifest's bytes feed its dataset's identity, an
    extract's its source fingerprint) and the store refuses a second, different write of an immutable
    object, so the encoding is canonical: keys sorted, non-ASCII escaped, nothing that depends on when
    or where it was written.

    A subclass names what it is in ``record_type`` (parse errors say ``<key>: not a valid <record_type>``)
    and may set ``compact`` for a one-line encoding without a trailing newline (an extract: hashed in a
    stream, never read by people); any other record is a document, indented by 2 and ending in a newline.
    A subclass whose ``model_config`` sets ``ser_json_inf_nan="strings"`` is strict JSON: NaN and the
    infinities are written as the strings pydantic writes and reads back ("NaN", "Infinity"); the others
    write them as bare constants (not JSON, but what Python and pydantic read), as they always have.
    Fields named in ``omit_if_none`` are left out while None: fields added later, so a record that does
    not use them reads as it did before them (to readers that predate them, too).
    """

    record_type: ClassVar[str]
    compact: ClassVar[bool] = False
    omit_if_none: ClassVar[frozenset[str]] = frozenset()

    def canonical(self) -> Self:
        """The record in the form it is stored in; a record whose lists carry no order sorts them here."""
        return self

    def to_json_bytes(self) -> bytes:
        """The canonical JSON of :meth:`canonical`."""
        # mode="json" leaves NaN and infinities as floats
        content = self.canonical().model_dump(mode="json", exclude=self._omitted())
        strict_json = self.model_config.get("ser_json_inf_nan") == "strings"
        text = json.dumps(
            _non_finite_as_strings(content) if strict_json else content,
            sort_keys=True,
            indent=None if self.compact else 2,
            allow_nan=not strict_json,
        )
        return (text if self.compact else text + "\n").encode()

    def _omitted(self) -> set[str]:
        return {name for name in self.omit_if_none if getattr(self, name) is None}

    @classmethod
    def from_json_bytes(cls, data: bytes, *, name: str) -> Self:
        """Parse a stored record; bad JSON or a schema mismatch is a DataError naming ``name`` (its key)."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as error:
            raise DataError(f"{name}: not a valid {cls.record_type}: {error}") from error


def _non_finite_as_strings(value: object) -> object:
    """``value`` with every NaN or infinity replaced by the string ``ser_json_inf_nan="strings"`` writes."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _non_finite_as_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_non_finite_as_strings(item) for item in value]
    return value
