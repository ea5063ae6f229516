// A customer's whole flow with a TypeScript client generated from proto/
// by protoc-gen-es, over gRPC (HTTP/2) with connect-node: register, sign
// in, an admin creates a product, the customer orders it, lists and
// cancels the order, and the stock comes back.
//
// usage: tsx src/flow.ts USER_ADDR PRODUCT_ADDR ORDER_ADDR ADMIN_EMAIL ADMIN_PASSWORD

import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import { LineItemSchema, MoneySchema } from "../gen/oms/common/v1/common_pb.js";
import { OrderService, OrderStatus } from "../gen/oms/order/v1/order_pb.js";
import { ProductSchema, ProductService } from "../gen/oms/product/v1/product_pb.js";
import { AuthService } from "../gen/oms/user/v1/auth_pb.js";

const [userAddr, productAddr, orderAddr, adminEmail, adminPassword] = process.argv.slice(2);
if (!adminPassword) {
  throw new Error("usage: flow.ts USER_ADDR PRODUCT_ADDR ORDER_ADDR ADMIN_EMAIL ADMIN_PASSWORD");
}

const transport = (addr: string) => createGrpcTransport({ baseUrl: `http://${addr}` });
const auth = createClient(AuthService, transport(userAddr));
const products = createClient(ProductService, transport(productAddr));
const orders = createClient(OrderService, transport(orderAddr));
const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

function expect(condition: boolean, what: string): void {
  if (!condition) {
    console.error(`typescript client: FAILED: ${what}`);
    process.exit(1);
  }
}

const email = `ts-${Math.random().toString(16).slice(2, 10)}@example.com`;
await auth.register({ email, password: "typescript client password", displayName: "Ts" });
const customer = await auth.login({ email, password: "typescript client password" });
expect(customer.user?.email === email, `Login answered ${customer.user?.email}`);
const admin = await auth.login({ email: adminEmail, password: adminPassword });

const { product } = await products.createProduct(
  {
    product: create(ProductSchema, {
      sku: `TS-${Math.random().toString(16).slice(2, 10)}`,
      name: "TypeScript mug",
      price: create(MoneySchema, { currencyCode: "USD", amountMinor: 1500n }),
      stockOnHand: 5n,
    }),
  },
  bearer(admin.accessToken),
);
expect(product !== undefined, "CreateProduct answered no product");
const productId = product!.id;

const { order } = await orders.createOrder(
  { lines: [create(LineItemSchema, { productId, quantity: 2 })], requestId: "ts-1" },
  bearer(customer.accessToken),
);
expect(order?.status === OrderStatus.CONFIRMED, `order status ${order?.status}`);
expect(order?.total?.amountMinor === 3000n, `order total ${order?.total?.amountMinor}`);

const listed = await orders.listOrders({ pageSize: 10 }, bearer(customer.accessToken));
expect(
  listed.orders.length === 1 && listed.orders[0].id === order!.id,
  `ListOrders gave ${listed.orders.map((o) => o.id)}`,
);

const cancelled = await orders.cancelOrder(
  { orderId: order!.id, reason: "changed my mind" },
  bearer(customer.accessToken),
);
expect(cancelled.order?.status === OrderStatus.CANCELLED, `after cancel: ${cancelled.order?.status}`);
const after = await products.getProduct({ productId });
expect(after.product?.stockAvailable === 5n, `stock after cancelling: ${after.product?.stockAvailable}`);

try {
  await orders.createOrder(
    { lines: [create(LineItemSchema, { productId, quantity: 0 })], requestId: "ts-bad" },
    bearer(customer.accessToken),
  );
  expect(false, "a quantity of 0 was accepted");
} catch (error) {
  const status = ConnectError.from(error);
  expect(status.code === Code.InvalidArgument, `quantity 0 answered ${Code[status.code]}`);
  // google.rpc details arrive as grpc-status-details-bin.
  expect(status.details.length > 0, "no google.rpc details on INVALID_ARGUMENT");
}

console.log(
  "typescript client (protoc-gen-es + connect-node gRPC): register, login, admin CreateProduct, " +
    "CreateOrder CONFIRMED, ListOrders, CancelOrder, stock back to 5, INVALID_ARGUMENT with details",
);
