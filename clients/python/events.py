"""Reads OMS events from Kafka with kafka-python and decodes them with the
classes grpcio-tools generated from proto/ (clients/python/generate.sh):
a consumer in another language, needing nothing from OMS but the contract.

usage: events.py [--save FILE] BROKERS ORDER_ID [ORDER_ID …]

Reads oms.order.v1.events from the beginning (a group of its own) until
every order named has its OrderCreated and OrderConfirmed, checks the
CloudEvents headers against the decoded event, prints each order's events
and reads one product event as well. With --save, writes the record value
of the first OrderConfirmed to FILE (for the TypeScript client to decode).
"""

import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "gen"))

from kafka import KafkaConsumer  # noqa: E402
from oms.order.v1 import events_pb2 as order_events  # noqa: E402
from oms.product.v1 import events_pb2 as product_events  # noqa: E402


def fail(message: str) -> None:
    raise SystemExit(f"events.py: FAILED: {message}")


def consumer(brokers: str, topic: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=brokers.split(","),
        group_id=f"python-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=30_000,
        session_timeout_ms=6_000,
        heartbeat_interval_ms=1_000,
    )


def main() -> int:
    args = sys.argv[1:]
    save = None
    if args[:1] == ["--save"]:
        save, args = Path(args[1]), args[2:]
    brokers, wanted = args[0], set(args[1:])
    seen: dict[str, list[str]] = {order: [] for order in wanted}
    for record in consumer(brokers, "oms.order.v1.events"):
        event = order_events.OrderEvent()
        event.ParseFromString(record.value)
        if event.order_id not in wanted:
            continue
        headers = {key: value.decode() for key, value in record.headers}
        case = event.WhichOneof("change")
        type_name = type(getattr(event, case)).DESCRIPTOR.full_name
        expected = {
            "ce_specversion": "1.0",
            "ce_id": event.event_id,
            "ce_source": "/oms/order-svc",
            "ce_type": type_name,
            "ce_subject": event.order_id,
            "content-type": "application/protobuf",
        }
        for key, value in expected.items():
            if headers.get(key) != value:
                fail(f"header {key} is {headers.get(key)!r}, expected {value!r}")
        if record.key.decode() != event.order_id:
            fail(f"key {record.key!r} is not the order ID {event.order_id}")
        seen[event.order_id].append(type_name.rsplit(".", 1)[1])
        if save and case == "confirmed" and not save.exists():
            save.write_bytes(record.value)
        if all({"OrderCreated", "OrderConfirmed"} <= set(kinds) for kinds in seen.values()):
            break
    else:
        fail(f"not every order's events arrived within 30 s: {seen}")

    for record in consumer(brokers, "oms.product.v1.events"):
        event = product_events.ProductEvent()
        event.ParseFromString(record.value)
        if not event.product_id or not event.WhichOneof("change"):
            fail(f"an undecodable product event: {record.value!r}")
        break
    else:
        fail("no product event within 30 s")

    summary = "; ".join(f"{order[:8]}…: {' -> '.join(kinds)}" for order, kinds in seen.items())
    print(f"kafka-python decoded order events with CloudEvents headers ({summary}) and a product event")
    return 0


if __name__ == "__main__":
    sys.exit(main())
