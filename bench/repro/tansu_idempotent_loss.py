"""Does a tansu broker keep every message it acknowledged across a stop?

Found by `oms-bench --scenarios chaos --tansu ...` (BENCHMARKS.md, "Chaos
and soak"): order events the broker had acknowledged to order-svc's relay
were missing from the topic after the broker was stopped and started. This
script shows it without OMS: one librdkafka producer (confluent-kafka) sends
to a tansu of its own whose storage is an S3 bucket (moto), the broker is
stopped mid-stream and started again on the same bucket, and every
acknowledged message is looked for from the start of the topic.

    python3 -m venv /tmp/ck && /tmp/ck/bin/pip install confluent-kafka==2.16.1
    /tmp/ck/bin/python bench/repro/tansu_idempotent_loss.py TANSU S3_ENDPOINT \
        idempotent|plain kill|term

Measured 2026-12-02 (tansu 0.6.0, librdkafka 2.16.0), three runs each:
idempotent + SIGKILL lost 10, 3 and 10 acknowledged messages; plain (not
idempotent) + SIGKILL and both + SIGTERM lost none.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

TANSU, S3, MODE, STOP = sys.argv[1:5]
SIGNAL = signal.SIGKILL if STOP == "kill" else signal.SIGTERM
PARTITIONS = 3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PORT = free_port()
BROKER = f"127.0.0.1:{PORT}"
BUCKET = "tansu-loss-" + uuid.uuid4().hex[:8]
urllib.request.urlopen(urllib.request.Request(f"{S3}/{BUCKET}", method="PUT"))
ENV = dict(
    os.environ,
    AWS_ACCESS_KEY_ID="repro",
    AWS_SECRET_ACCESS_KEY="repro",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    AWS_ENDPOINT=S3,
    AWS_ALLOW_HTTP="true",
)
COMMAND = [
    TANSU, "broker",
    "--listener-url", f"tcp://{BROKER}",
    "--advertised-listener-url", f"tcp://{BROKER}",
    "--storage-engine", f"s3://{BUCKET}/",
]


def start():
    broker = subprocess.Popen(COMMAND, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", PORT), 0.2).close()
            return broker
        except OSError:
            time.sleep(0.1)
    raise SystemExit("tansu did not listen within 30 s")


broker = start()
try:
    admin = AdminClient({"bootstrap.servers": BROKER})
    for future in admin.create_topics([NewTopic("t", PARTITIONS, 1)]).values():
        future.result()

    acknowledged, failed = set(), 0

    def delivered(error, message):
        global failed
        if error is None:
            acknowledged.add(message.value())
        else:
            failed += 1

    producer = Producer({
        "bootstrap.servers": BROKER,
        "enable.idempotence": MODE == "idempotent",
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 10000,
    })
    began, sent, stopped = time.time(), 0, False
    while time.time() - began < 8:
        producer.produce("t", key=str(sent % 13), value=b"m%d" % sent, on_delivery=delivered)
        sent += 1
        producer.poll(0)
        time.sleep(0.002)
        if not stopped and time.time() - began > 3:
            broker.send_signal(SIGNAL)
            broker.wait()
            stopped = True
            time.sleep(1)
            broker = start()
    producer.flush(30)

    consumer = Consumer({"bootstrap.servers": BROKER, "group.id": "repro-" + uuid.uuid4().hex})
    consumer.assign([TopicPartition("t", p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    seen, last = set(), time.time()
    while time.time() - last < 5:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        seen.add(message.value())
        last = time.time()
    lost = acknowledged - seen
    print(f"{MODE} {STOP}: sent {sent}, acknowledged {len(acknowledged)}, failed {failed}, "
          f"read back {len(seen)}, acknowledged but lost {len(lost)}")
    sys.exit(1 if lost else 0)
finally:
    broker.kill()
    broker.wait()
