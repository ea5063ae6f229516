"""A customer's whole flow through the gRPC API with a client generated
from proto/ by grpcio-tools: register, sign in, an admin creates a product,
uploads its image (client-streaming), the customer orders it, lists and
cancels the order, and the stock comes
back. Exits non-zero, saying where, on any surprise.

usage: flow.py USER_ADDR PRODUCT_ADDR ORDER_ADDR ADMIN_EMAIL ADMIN_PASSWORD
"""

import hashlib
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "gen"))

import grpc  # noqa: E402

from oms.common.v1 import common_pb2  # noqa: E402
from oms.order.v1 import order_pb2, order_pb2_grpc  # noqa: E402
from oms.product.v1 import product_pb2, product_pb2_grpc  # noqa: E402
from oms.user.v1 import auth_pb2, auth_pb2_grpc  # noqa: E402


def bearer(token: str):
    return [("authorization", f"Bearer {token}")]


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"python client: FAILED: {what}")


def main() -> int:
    user_addr, product_addr, order_addr, admin_email, admin_password = sys.argv[1:6]
    auth = auth_pb2_grpc.AuthServiceStub(grpc.insecure_channel(user_addr))
    products = product_pb2_grpc.ProductServiceStub(grpc.insecure_channel(product_addr))
    orders = order_pb2_grpc.OrderServiceStub(grpc.insecure_channel(order_addr))

    email = f"py-{uuid.uuid4().hex[:8]}@example.com"
    auth.Register(auth_pb2.RegisterRequest(email=email, password="python client password",
                                           display_name="Py"))
    customer = auth.Login(auth_pb2.LoginRequest(email=email, password="python client password"))
    expect(customer.user.email == email, f"Login answered {customer.user}")
    admin = auth.Login(auth_pb2.LoginRequest(email=admin_email, password=admin_password))

    product = products.CreateProduct(
        product_pb2.CreateProductRequest(product=product_pb2.Product(
            sku=f"PY-{uuid.uuid4().hex[:8]}", name="Python mug",
            price=common_pb2.Money(currency_code="USD", amount_minor=1500), stock_on_hand=5)),
        metadata=bearer(admin.access_token)).product

    # A client-streaming upload: the start, then the bytes in chunks.
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
        "0000000c49444154789c63f8cfc0000003010100c9fe92ef0000000049454e44ae426082")
    upload = iter([
        product_pb2.UploadProductImageRequest(start=product_pb2.ImageUploadStart(
            product_id=product.id, content_type="image/png", alt_text="A red dot")),
        product_pb2.UploadProductImageRequest(chunk=png[:40]),
        product_pb2.UploadProductImageRequest(chunk=png[40:]),
    ])
    image = products.UploadProductImage(upload, metadata=bearer(admin.access_token)).image
    expect(image.sha256 == hashlib.sha256(png).hexdigest(), f"uploaded image {image}")
    shown = products.GetProduct(product_pb2.GetProductRequest(product_id=product.id)).product
    expect([i.id for i in shown.images] == [image.id] and shown.images[0].primary,
           f"GetProduct images {shown.images}")

    lines = [common_pb2.LineItem(product_id=product.id, quantity=2)]
    order = orders.CreateOrder(order_pb2.CreateOrderRequest(lines=lines, request_id="py-1"),
                               metadata=bearer(customer.access_token)).order
    expect(order.status == order_pb2.ORDER_STATUS_CONFIRMED, f"order status {order.status}")
    expect(order.total.amount_minor == 3000, f"order total {order.total}")

    listed = orders.ListOrders(order_pb2.ListOrdersRequest(page_size=10),
                               metadata=bearer(customer.access_token)).orders
    expect([o.id for o in listed] == [order.id], f"ListOrders gave {[o.id for o in listed]}")

    cancelled = orders.CancelOrder(order_pb2.CancelOrderRequest(order_id=order.id, reason="changed my mind"),
                                   metadata=bearer(customer.access_token)).order
    expect(cancelled.status == order_pb2.ORDER_STATUS_CANCELLED, f"after cancel: {cancelled.status}")
    stock = products.GetProduct(product_pb2.GetProductRequest(product_id=product.id)).product
    expect(stock.stock_available == 5, f"stock after cancelling: {stock.stock_available}")

    try:
        orders.CreateOrder(order_pb2.CreateOrderRequest(
            lines=[common_pb2.LineItem(product_id=product.id, quantity=0)], request_id="py-bad"),
            metadata=bearer(customer.access_token))
        expect(False, "a quantity of 0 was accepted")
    except grpc.RpcError as error:
        expect(error.code() == grpc.StatusCode.INVALID_ARGUMENT, f"quantity 0 answered {error.code()}")
        details = dict(error.trailing_metadata() or ())
        expect("grpc-status-details-bin" in details, "no google.rpc details on INVALID_ARGUMENT")

    print("python client (grpcio-tools): register, login, admin CreateProduct, UploadProductImage, "
          "CreateOrder CONFIRMED, "
          "ListOrders, CancelOrder, stock back to 5, INVALID_ARGUMENT with details")
    return 0


if __name__ == "__main__":
    sys.exit(main())
