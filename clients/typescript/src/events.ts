// Decodes an OMS order event, as read from Kafka, with the TypeScript
// classes protoc-gen-es generated from proto/: the bytes are a record's
// value that clients/python/events.py saved.
//
// usage: tsx src/events.ts EVENT_FILE ORDER_ID

import { readFileSync } from "node:fs";

import { fromBinary } from "@bufbuild/protobuf";

import { OrderEventSchema } from "../gen/oms/order/v1/events_pb.js";
import { OrderStatus } from "../gen/oms/order/v1/order_pb.js";

const [file, orderId] = process.argv.slice(2);
if (!orderId) {
  throw new Error("usage: events.ts EVENT_FILE ORDER_ID");
}
const event = fromBinary(OrderEventSchema, readFileSync(file));
const failures: string[] = [];
if (event.orderId !== orderId) failures.push(`order ${event.orderId}, expected ${orderId}`);
if (event.change.case !== "confirmed") failures.push(`change ${event.change.case}, expected confirmed`);
if (event.order?.status !== OrderStatus.CONFIRMED) failures.push(`status ${event.order?.status}`);
if (!event.eventId || !event.occurTime) failures.push("no event ID or time");
if (failures.length > 0) {
  console.error(`typescript events: FAILED: ${failures.join("; ")}`);
  process.exit(1);
}
console.log(
  `typescript (protoc-gen-es) decoded the OrderConfirmed event of ${orderId.slice(0, 8)}… read from Kafka`,
);
