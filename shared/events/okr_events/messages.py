"""Messages as a transport receives them (`RawMessage`), their decoding (`decode_batch`) and
the headers that say why one went to the dead-letter topic (`error_headers`).

Pure data and functions, shared by the consumer runtime (`consuming.EventProcessor`), both
transports and replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .codec import DecodeError, InboundEvent, decode

__all__ = ["Decoded", "RawMessage", "decode_batch", "error_headers"]


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A message as either transport received it, before decoding."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


Decoded = InboundEvent | DecodeError


def decode_batch(raws: Sequence[RawMessage]) -> list[Decoded]:
    """Each message's event, or why it is not one (pure: any thread may do it)."""
    result: list[Decoded] = []
    for raw in raws:
        try:
            result.append(
                decode(
                    topic=raw.topic,
                    partition=raw.partition,
                    offset=raw.offset,
                    key=raw.key,
                    value=raw.value,
                    headers=raw.headers,
                )
            )
        except DecodeError as error:
            result.append(error)
    return result


def error_headers(raw: RawMessage, error: BaseException, group: str) -> list[tuple[str, bytes]]:
    """Why a message is in the dead-letter topic, and where it came from."""
    return [
        ("dlq_error", str(error)[:2000].encode()),
        ("dlq_error_class", type(error).__name__.encode()),
        ("dlq_topic", raw.topic.encode()),
        ("dlq_partition", str(raw.partition).encode()),
        ("dlq_offset", str(raw.offset).encode()),
        ("dlq_consumer_group", group.encode()),
        ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
    ]
