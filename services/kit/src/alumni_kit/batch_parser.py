"""A FastStream batch parser that no header can make lose a batch.

FastStream's own batch parser decodes every header value as UTF-8 (for its
correlation ids and content type). One header that is not UTF-8, or has no
value, raises inside the framework, before the subscriber is called: the batch
is logged as an error and never handed on, yet the consumer has fetched past
it, so the next batch's commit skips it. Every record in it, valid or not, is
gone without a dead letter (found by the topic fuzzer: tests/fuzz).

This parser hands FastStream copies whose header values it can decode
(undecodable bytes replaced, a missing value empty) and gives the message back
with the original records, so the kit's consumer sees, parses and, if need be,
dead-letters exactly what arrived, headers included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.structs import ConsumerRecord


async def tolerant_batch_parser(
    records: tuple[ConsumerRecord[bytes, bytes], ...], original: Callable[[Any], Awaitable[Any]]
) -> Any:
    """FastStream's parse of `records` (its `parser=` hook), keeping the records as they came."""
    message = await original(tuple(_decodable(r) for r in records))
    message.raw_message = records
    return message


def _decodable(record: ConsumerRecord[bytes, bytes]) -> ConsumerRecord[bytes, bytes]:
    headers = record.headers or ()
    if all(_is_utf8(value) for _, value in headers):
        return record
    safe = tuple((name, (value or b"").decode(errors="replace").encode()) for name, value in headers)
    return dataclasses.replace(record, headers=safe)


def _is_utf8(value: bytes | None) -> bool:
    if value is None:
        return False
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True
