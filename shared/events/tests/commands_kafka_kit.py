"""What the tests of commands from events over real Kafka share: producing and reading topics,
the tally store's positions and totals, and the tally consumer as a process or a thread."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from okr_events.codec import encode, header_dict
from okr_events.commands import CommandProcessor
from okr_events.kafka import KafkaSettings
from okr_events.kafka_consumer import KafkaConsumerRunner
from tally_context import (
    COUNTER_SOURCE,
    Counted,
    CounterStarted,
    TallyApplication,
    TallyHandler,
    applied_event_ids,
    refusals,
)

TESTS = Path(__file__).resolve().parent


def counter_streams(counters: int, counts: int, seed: int) -> list[Any]:
    """Contracts of ``counters`` counters, ``counts`` Counted each (about one in five
    negative, so refused), interleaved as the counters would publish them."""
    rng = random.Random(seed)
    at = datetime(2026, 10, 1, tzinfo=UTC)
    ids = [uuid.uuid4() for _ in range(counters)]
    streams = {
        c: [CounterStarted(aggregate_id=c, aggregate_version=1, occurred_at=at, actor="m")]
        + [
            Counted(
                aggregate_id=c,
                aggregate_version=v,
                occurred_at=at,
                actor="m",
                amount=rng.choice([-2, 1, 2, 3, 4]),
            )
            for v in range(2, counts + 2)
        ]
        for c in ids
    }
    return [stream[i] for i in range(counts + 1) for stream in streams.values()]


def produce(bootstrap: str, topic: str, contracts: Sequence[Any]) -> None:
    """Publish as a relay does: key = aggregate id, so one counter keeps its partition."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for contract in contracts:
        message = encode(contract, topic=topic, source=COUNTER_SOURCE)
        producer.produce(topic, key=message.key, value=message.value, headers=message.headers)
    assert producer.flush(30) == 0


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every message of a topic, partition by partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        messages: list[Any] = []
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            got: list[Any] = []
            deadline = time.monotonic() + 15
            while len(got) < high - low and time.monotonic() < deadline:
                got += [m for m in consumer.consume(500, timeout=0.5) if m.error() is None]
            messages += got
        return messages
    finally:
        consumer.close()


def ends(bootstrap: str, topic: str) -> dict[int, int]:
    """partition -> high watermark (the next offset to be written)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"w-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        consumer.close()


def positions(app: TallyApplication, topic: str, partitions: Sequence[int]) -> dict[int, int]:
    return {p: app.store.next_offset(topic, p) or 0 for p in partitions}


def caught_up(app: TallyApplication, bootstrap: str, topic: str) -> bool:
    highs = ends(bootstrap, topic)
    return positions(app, topic, list(highs)) == highs


def inbound_ids(app: TallyApplication) -> list[str]:
    """The inbound event of every command the store recorded: applied or refused."""
    return applied_event_ids(app) + [r.inbound_event_id for r in refusals(app)]


def assert_commands_match_positions(app: TallyApplication, messages: Sequence[Any]) -> None:
    """What the store holds is exactly one command per Counted event before its partition's
    stored position: events and positions were never committed apart."""
    topic = messages[0].topic()
    stored = positions(app, topic, sorted({m.partition() for m in messages}))
    expected = {
        header_dict(m.headers())["ce_id"]
        for m in messages
        if m.offset() < stored[m.partition()]
        and header_dict(m.headers())["ce_type"] == "okr.counter.Counted.v1"
    }
    recorded = inbound_ids(app)
    assert len(recorded) == len(set(recorded)), "an inbound event was applied twice"
    assert set(recorded) == expected


def expected_totals(contracts: Sequence[Any]) -> dict[uuid.UUID, int]:
    result: dict[uuid.UUID, int] = {}
    for contract in contracts:
        if isinstance(contract, Counted) and contract.amount >= 0:
            result[contract.aggregate_id] = result.get(contract.aggregate_id, 0) + contract.amount
    return result


class ConsumerProcess:
    """The tally consumer as a process of its own (tally_context.main), logging to a file."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed by the process
        python_path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            [sys.executable, "-c", "from tally_context import main; main()"],
            env=os.environ | self.env | env | {"PYTHONPATH": python_path},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.log_dir.glob("*.log")))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()


def runner_thread(
    app: TallyApplication, topic: str, kafka: KafkaSettings, **handler: Any
) -> KafkaConsumerRunner:
    processor = CommandProcessor(TallyHandler(**handler), app)
    runner = KafkaConsumerRunner(
        processor,
        processor.store,
        topics=[topic],
        settings=kafka,
        group_id=f"tally-{uuid.uuid4().hex[:8]}",
        retry_backoff=0.01,
    )
    runner.start_thread("tally")
    return runner


def stop(runner: KafkaConsumerRunner) -> None:
    runner.stop()
    assert runner._thread is not None
    runner._thread.join(15)
    assert runner.error is None, runner.error
