"""Read the OKR event stream from Kafka and print each event (an analytics consumer's start).

.venv/bin/python shared/events/examples/read_stream.py --from-beginning   (Ctrl-C stops it)
"""

import argparse

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition
from okr_events.codec import DecodeError, decode

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--bootstrap", default="127.0.0.1:9092")
parser.add_argument("--topic", default="okr.goals.events.v1")
parser.add_argument("--from-beginning", action="store_true", help="start at offset 0")
parser.add_argument("--group", help="consumer group that remembers its position (default: none)")
args = parser.parse_args()
start = OFFSET_BEGINNING if args.from_beginning else OFFSET_END

consumer = Consumer(
    {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group or "read-stream",  # only used (and committed) with --group
        "enable.auto.commit": args.group is not None,
        "auto.offset.reset": "earliest" if args.from_beginning else "latest",
    }
)


def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
    if args.from_beginning:  # also for a group that has read before
        for partition in partitions:
            partition.offset = OFFSET_BEGINNING
    consumer.assign(partitions)


if args.group:
    consumer.subscribe([args.topic], on_assign=on_assign)
else:  # every partition, no group membership, nothing committed (like kcat without -G)
    partitions = consumer.list_topics(args.topic, timeout=10).topics[args.topic].partitions
    consumer.assign([TopicPartition(args.topic, p, start) for p in partitions])
try:
    while True:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        at = {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset()}
        try:
            event = decode(**at, key=msg.key(), value=msg.value(), headers=msg.headers())
        except DecodeError as exc:  # not a valid event of a known contract
            print(f"skipped {at}: {exc}")
            continue
        print(event.type, event.aggregate_id, f"v{event.aggregate_version}")
        print("  ", event.contract.model_dump_json())
except KeyboardInterrupt:
    pass
finally:
    consumer.close()
