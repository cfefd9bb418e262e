"""Command payloads: one frozen class per command, keyed by its pinned wire name."""

from decimal import Decimal, Overflow
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticKnownError


def _not_a_number(value: object) -> object:
    if isinstance(value, int | float):
        raise ValueError("money is a decimal string such as \"19.99\", never a JSON number")
    return value


def _normalizable(value: Decimal) -> Decimal:
    """pydantic's max_digits check normalizes a positive value in the decimal context, which
    raises Overflow, not a validation error, past the context's largest exponent ("1E+1000000"):
    such a value is refused as one with too many digits, as "1E+999999" is."""
    if value > 0:
        try:
            value.normalize()
        except Overflow:
            raise PydanticKnownError("decimal_max_digits", {"max_digits": 18}) from None
    return value


MONEY_PATTERN = r"^([1-9][0-9]{0,15}(\.[0-9]{1,2})?|0\.([1-9][0-9]?|0[1-9]))$"
Money = Annotated[
    Decimal, BeforeValidator(_not_a_number), AfterValidator(_normalizable),
    Field(gt=0, max_digits=18, decimal_places=2),
    WithJsonSchema({"type": "string", "pattern": MONEY_PATTERN, "examples": ["19.99"]}),
]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Channel = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,39}$", examples=["web", "mobile"])]


# Quantities stay far inside 64 bits: rows are stored as JSON that orjson writes, which
# refuses integers beyond that range.
MAX_QUANTITY = 1_000_000_000
Quantity = Annotated[int, Field(gt=0, le=MAX_QUANTITY)]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderLine(Message):
    sku: Name
    quantity: Quantity


class RegisterProduct(Message):
    name: Name
    price: Money
    stock: Annotated[int, Field(ge=0, le=MAX_QUANTITY)] = 0


class ChangePrice(Message):
    price: Money


class Restock(Message):
    quantity: Quantity


class ReserveStock(Message):
    order_id: Name
    quantity: Quantity


class ReleaseStock(Message):
    order_id: Name
    quantity: Quantity


class DispatchStock(Message):
    """The stock a shipped order reserved leaves the warehouse."""

    order_id: Name
    quantity: Quantity


class PlaceOrder(Message):
    customer_id: Name
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=100)]
    channel: Channel = "web"  # where the order came from: web, mobile, store, ...


class PricedLine(Message):
    sku: Name
    quantity: Quantity
    unit_price: Money


class ConfirmOrder(Message):
    lines: Annotated[list[PricedLine], Field(min_length=1)]
    total: Money


class RejectOrder(Message):
    reason: Annotated[str, Field(max_length=1000)]


class PayOrder(Message):
    amount: Money


class ShipOrder(Message):
    pass


class CancelOrder(Message):
    reason: Annotated[str, Field(max_length=1000)] = ""


COMMANDS: dict[str, type[Message]] = {
    cls.__name__: cls
    for cls in (
        RegisterProduct, ChangePrice, Restock, ReserveStock, ReleaseStock, DispatchStock,
        PlaceOrder, ConfirmOrder, RejectOrder, PayOrder, ShipOrder, CancelOrder,
    )
}

# Issued only by the reservation saga, on the internal commands topic; a client that sends
# one gets a rejection naming this rule.
INTERNAL: frozenset[str] = frozenset(
    {"ReserveStock", "ReleaseStock", "DispatchStock", "ConfirmOrder", "RejectOrder"})
PUBLIC: dict[str, type[Message]] = {
    name: cls for name, cls in COMMANDS.items() if name not in INTERNAL
}


def internal_rule(type_name: str) -> str:
    """Why a client may not issue an internal command."""
    return f"{type_name} is internal: only the reservation saga may issue it"
