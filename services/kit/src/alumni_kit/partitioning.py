"""Kafka's default partition of a key (murmur2, as the Java client computes it).

aiokafka's own implementation reads the key byte by byte; this one unpacks the
4-byte words at once and masks only where Java's 32-bit arithmetic overflows.
Same result (tests/unit/test_partitioning.py compares them on random keys),
about three times faster, which counts when the outbox relay publishes one
fact per member in a backfill.
"""

from __future__ import annotations

import struct

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    length = len(data)
    h = (_SEED ^ length) & _MASK
    words = length // 4
    for k in struct.unpack_from(f"<{words}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    base = length & ~3
    if tail >= 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_of(key: bytes, partitions: list[int]) -> int:
    """The partition Kafka's default partitioner gives `key` among sorted `partitions`."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
