"""Kafka messages <-> contracts, in CloudEvents 1.0 Kafka *binary* mode.

On the wire a message is: key = the aggregate id (so one aggregate's events share a partition
and keep their order), value = the contract as JSON, and the CloudEvents attributes as
``ce_*`` headers. Consumers can route and dedupe on headers without parsing the payload.
The embedded transport encodes and decodes through these same functions.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .base import EventContract
from .envelope import _EVENT_ID_NAMESPACE
from .registry import UnknownEventType, contract_for_cloudevents_type

CONTENT_TYPE = "application/json"
SPEC_VERSION = "1.0"
#: Header names, as the CloudEvents Kafka protocol binding spells them.
H_ID, H_TYPE, H_SOURCE, H_SUBJECT, H_TIME = "ce_id", "ce_type", "ce_source", "ce_subject", "ce_time"
H_SPECVERSION, H_DATASCHEMA, H_CONTENT_TYPE = "ce_specversion", "ce_dataschema", "content-type"

Headers = list[tuple[str, bytes]]


class DecodeError(ValueError):
    """A message is not a valid event of a known contract (it goes to the dead-letter topic)."""


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    topic: str
    key: bytes
    value: bytes
    headers: Headers


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """One decoded event, with where it was read from. Handlers receive this."""

    contract: EventContract
    event_id: str
    source: str
    type: str
    topic: str
    partition: int
    offset: int
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def aggregate_id(self) -> uuid.UUID:
        return self.contract.aggregate_id

    @property
    def aggregate_version(self) -> int:
        return self.contract.aggregate_version


# The relay encodes every event it publishes: what does not change between messages is made
# once (per contract class, per source), and the event id is computed without UUID objects.
_SPEC_VERSION_HEADER = (H_SPECVERSION, SPEC_VERSION.encode())
_CONTENT_TYPE_HEADER = (H_CONTENT_TYPE, CONTENT_TYPE.encode())
_class_headers: dict[type[EventContract], tuple[tuple[str, bytes], tuple[str, bytes]]] = {}
_source_headers: dict[str, tuple[str, bytes]] = {}
_NAMESPACE = _EVENT_ID_NAMESPACE.bytes
_UUID5_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))  # variant and version bits
_UUID5_SET = (0x8000 << 48) | (5 << 76)  # RFC 4122 variant, version 5


def _event_id(aggregate_id: str, version: int) -> bytes:
    """``envelope.stable_event_id`` (uuid5 of "<aggregate id>:<version>"), as header bytes."""
    name = f"{aggregate_id}:{version}".encode()
    digest = hashlib.sha1(_NAMESPACE + name, usedforsecurity=False).digest()
    h = f"{int.from_bytes(digest[:16]) & _UUID5_CLEAR | _UUID5_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".encode()


def encode(
    contract: EventContract,
    *,
    topic: str,
    source: str,
    extra_headers: Sequence[tuple[str, bytes]] = (),
) -> OutboundMessage:
    """The Kafka message publishing ``contract``. Its ``ce_id`` depends only on the stream
    position, so publishing the same recorded event twice gives the same id."""
    cls = type(contract)
    static = _class_headers.get(cls)
    if static is None:
        static = _class_headers[cls] = (
            (H_TYPE, cls.cloudevents_type().encode()),
            (H_DATASCHEMA, cls.schema_uri().encode()),
        )
    source_header = _source_headers.get(source)
    if source_header is None:
        source_header = _source_headers[source] = (H_SOURCE, source.encode())
    aggregate_id = str(contract.aggregate_id)
    key = aggregate_id.encode()
    headers: Headers = [
        (H_ID, _event_id(aggregate_id, contract.aggregate_version)),
        static[0],
        source_header,
        (H_SUBJECT, key),
        (H_TIME, contract.occurred_at.isoformat().encode()),
        _SPEC_VERSION_HEADER,
        static[1],
        _CONTENT_TYPE_HEADER,
        *extra_headers,
    ]
    return OutboundMessage(topic, key, contract.model_dump_json().encode(), headers)


def header_dict(headers: Sequence[tuple[str, Any]] | None) -> dict[str, str]:
    """Kafka headers as text (the last value wins when a header repeats)."""
    try:  # every message decodes this: the common case (UTF-8 bytes) in one comprehension
        return {name: value.decode() for name, value in headers or ()}
    except (AttributeError, UnicodeDecodeError):
        pass
    result: dict[str, str] = {}
    for name, value in headers or ():
        if isinstance(value, bytes):
            try:
                result[name] = value.decode()
            except UnicodeDecodeError:
                continue
        elif value is not None:
            result[name] = str(value)
    return result


def decode(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, Any]] | None,
) -> InboundEvent:
    """The event in a message; DecodeError says precisely what is wrong with it."""
    h = header_dict(headers)
    missing = [n for n in (H_ID, H_TYPE, H_SOURCE, H_SPECVERSION) if not h.get(n)]
    if missing:
        raise DecodeError(f"missing CloudEvents headers {missing}")
    if h[H_SPECVERSION] != SPEC_VERSION:
        raise DecodeError(f"unsupported ce_specversion {h[H_SPECVERSION]!r}")
    content_type = h.get(H_CONTENT_TYPE, CONTENT_TYPE).split(";")[0].strip()
    if content_type != CONTENT_TYPE:
        raise DecodeError(f"unsupported content-type {content_type!r}")
    try:
        contract_cls = contract_for_cloudevents_type(h[H_TYPE])
    except UnknownEventType as exc:
        raise DecodeError(str(exc)) from None
    if value is None:
        raise DecodeError("empty message value")
    try:
        contract = contract_cls.model_validate_json(value)
    except ValidationError as exc:
        raise DecodeError(f"payload does not match {h[H_TYPE]}: {exc}") from None
    subject = str(contract.aggregate_id)
    if h.get(H_SUBJECT, subject) != subject or (
        key is not None and key.decode(errors="replace") != subject
    ):
        raise DecodeError(f"key/ce_subject do not name the payload's aggregate {subject}")
    return InboundEvent(
        contract=contract,
        event_id=h[H_ID],
        source=h[H_SOURCE],
        type=h[H_TYPE],
        topic=topic,
        partition=partition,
        offset=offset,
        headers=h,
    )


def describe(message_value: bytes | None) -> str:
    """A short, safe rendering of a payload for logs and DLQ headers."""
    if not message_value:
        return "<empty>"
    try:
        return json.dumps(json.loads(message_value), ensure_ascii=False)[:200]
    except ValueError:
        return repr(message_value[:200])
