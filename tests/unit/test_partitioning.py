"""Our murmur2 partitioning equals Kafka's (aiokafka's reference implementation)."""

from __future__ import annotations

import os
import random
import uuid

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as reference

from alumni_kit.partitioning import murmur2, partition_of


def test_same_hash_as_the_reference_for_every_length_and_random_bytes() -> None:
    rng = random.Random(1)
    keys = [bytes(rng.randrange(256) for _ in range(n)) for n in range(0, 64) for _ in range(20)]
    keys += [str(uuid.uuid4()).encode() for _ in range(500)] + [os.urandom(37) for _ in range(200)]
    assert [murmur2(k) for k in keys] == [reference(k) for k in keys]


def test_same_partition_as_the_default_partitioner() -> None:
    partitions = list(range(6))
    for _ in range(500):
        key = str(uuid.uuid4()).encode()
        assert partition_of(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_known_java_values() -> None:
    # Values from Kafka's own UtilsTest.testMurmur2.
    assert murmur2(b"21") == (-973932308) & 0xFFFFFFFF
    assert murmur2(b"foobar") == (-790332482) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") == (-985981536) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-longer-string") == (-1486304829) & 0xFFFFFFFF
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == (-58897971) & 0xFFFFFFFF
