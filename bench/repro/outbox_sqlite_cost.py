"""What do outbox rows cost SQLite itself, without sqlx, RPCs or OMS code?

BENCHMARKS.md ("a change and its outbox row as one SQLite command") asks
where the events' share of CreateOrder goes once the statement hand-offs
are gone. This runs order-svc's two transactions per order (insert the
PENDING order; confirm it and insert its line) on the schema order-svc's
migration makes, in WAL mode with synchronous=NORMAL as the services open
it, with and without an outbox row in each (a 600-byte payload, ids in
UUIDv7 order, marked published 120 at a time as the relay does), and
prints CPU and wall milliseconds per order and the ratio. `intpk` is the
same with an integer primary key and the event id as a plain column.

    OMS_DATA_DIR=/tmp/oms-schema target/release/order-svc migrate
    python3 bench/repro/outbox_sqlite_cost.py /tmp/oms-schema/orders.db

Measured 2026-12-03 (Python 3, four runs each on a noisy shared VM): with
rows / without, CPU 1.43-2.03x on the schema as migrated, 1.43-1.67x with
intpk.
"""

import itertools
import os
import shutil
import sqlite3
import sys
import tempfile
import time

ORDERS = 6000
NOW = "2026-12-03 08:00:00.000000"
_counter = itertools.count()


def ordered_id():
    """A 36-character id that sorts in creation order, like a UUIDv7."""
    return "%020x-0000-7000-8000" % (time.time_ns() * 16 + next(_counter) % 16)


def run(schema, events, layout):
    work = tempfile.mkdtemp(prefix="outbox-cost-")
    path = os.path.join(work, "orders.db")
    shutil.copy(schema, path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("pragma journal_mode=wal")
    db.execute("pragma synchronous=normal")
    key = "id"
    if layout == "intpk":
        key = "seq"
        db.execute("drop table outbox")
        db.execute(
            "create table outbox (seq integer primary key, id varchar(36) not null,"
            " aggregate_type varchar(32) not null, aggregate_id varchar(64) not null,"
            " event_type varchar(128) not null, payload blob not null,"
            " create_time datetime(6) not null, publish_time datetime(6) null,"
            " attempts integer not null default 0, last_error text null)"
        )
        db.execute("create index outbox_publish_time_seq on outbox (publish_time, seq)")
    payload = os.urandom(600)
    outbox = (
        "insert into outbox (id, aggregate_type, aggregate_id, event_type, payload,"
        " create_time, attempts) values (?, 'order', ?, ?, ?, ?, 0)"
    )
    cpu, wall = time.process_time(), time.time()
    for i in range(ORDERS):
        order = ordered_id()
        db.execute("begin")
        db.execute(
            "insert into orders (id, customer_id, request_id, request_digest, status,"
            " currency_code, total_minor, attempt, stock_released, create_time, update_time)"
            " values (?, ?, ?, ?, 'PENDING', '', 0, 1, 0, ?, ?)",
            (order, "c" * 36, str(i), "d" * 64, NOW, NOW),
        )
        if events:
            db.execute(outbox, (ordered_id(), order, "oms.order.v1.OrderCreated", payload, NOW))
        db.execute("commit")
        db.execute("begin")
        db.execute(
            "update orders set status = 'CONFIRMED', currency_code = 'EUR', total_minor = 100,"
            " update_time = ? where id = ? and status = 'PENDING'",
            (NOW, order),
        )
        db.execute(
            "insert into order_lines values (?, 0, ?, 'SKU', 'name', 1, 'EUR', 100, 100)",
            (order, "p" * 36),
        )
        if events:
            db.execute(outbox, (ordered_id(), order, "oms.order.v1.OrderConfirmed", payload, NOW))
        db.execute("commit")
        if events and i % 60 == 59:
            db.execute(
                f"update outbox set publish_time = ? where {key} in"
                f" (select {key} from outbox where publish_time is null order by {key} limit 120)",
                (NOW,),
            )
    result = (
        (time.process_time() - cpu) / ORDERS * 1000,
        (time.time() - wall) / ORDERS * 1000,
    )
    db.close()
    shutil.rmtree(work)
    return result


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    schema = sys.argv[1]
    for layout in ["as migrated", "intpk", "as migrated", "intpk"]:
        off = run(schema, False, layout)
        on = run(schema, True, layout)
        print(
            f"{layout:12} without rows: cpu {off[0]:.3f} wall {off[1]:.3f} ms/order;"
            f" with rows: cpu {on[0]:.3f} wall {on[1]:.3f}; cpu ratio {on[0] / off[0]:.2f}"
        )


if __name__ == "__main__":
    main()
