"""A seeded, paced mix of every client command, with a share of duplicates: the fault load."""

import asyncio
from decimal import Decimal
from typing import Any

from streams.partitioning import owning_partition
from tests.integration.shop import Shop

SKUS = 20


class Load:
    """Orders, payments, cancellations, shipments, restocks and price changes, at a pace.

    Payments guess the total from the prices last set, so most are right and some are
    rejected; a share of stale `expected_version` restocks is rejected too; with
    `duplicate_rate` an earlier command is sent again instead of a new one.
    """

    def __init__(self, shop: Shop, duplicate_rate: float) -> None:
        self.shop, self.rng, self.duplicate_rate = shop, shop.rng, duplicate_rate
        self.skus = [f"sku-{n:02}" for n in range(SKUS)]
        self.prices: dict[str, Decimal] = {}
        self.orders: dict[str, list[tuple[str, int]]] = {}

    async def open_shop(self) -> None:
        registered = []
        for sku in self.skus:
            self.prices[sku] = self.price()
            registered.append(await self.shop.send("RegisterProduct", sku, {
                "name": f"Product {sku}", "price": str(self.prices[sku]),
                "stock": self.rng.randint(20, 60)}))
        await self.shop.settle(registered, timeout=300)

    async def run(self, commands: int, rate: float) -> None:
        for _ in range(commands):
            if self.shop.sent and self.rng.random() < self.duplicate_rate:
                await self.shop.resend(self.shop.sent[self.rng.choice(list(self.shop.sent))])
            else:
                await self.one_command()
            await asyncio.sleep(1 / rate)

    async def one_command(self) -> None:
        roll = self.rng.random()
        if roll < 0.45 or len(self.orders) < 10:
            await self.place_order()
        elif roll < 0.60:
            order_id = self.rng.choice(list(self.orders))
            await self.shop.send("PayOrder", order_id, {"amount": str(self.guess_total(order_id))})
        elif roll < 0.68:
            await self.shop.send("CancelOrder", self.rng.choice(list(self.orders)),
                                 {"reason": "changed mind"})
        elif roll < 0.76:
            await self.shop.send("ShipOrder", self.rng.choice(list(self.orders)), {})
        elif roll < 0.88:
            await self.shop.send("Restock", self.rng.choice(self.skus),
                                 {"quantity": self.rng.randint(1, 10)})
        elif roll < 0.94:
            sku = self.rng.choice(self.skus)
            self.prices[sku] = self.price()
            await self.shop.send("ChangePrice", sku, {"price": str(self.prices[sku])})
        else:
            await self.shop.send("Restock", self.rng.choice(self.skus), {"quantity": 1},
                                 expected_version=self.rng.randint(2, 40))

    async def place_order(self) -> None:
        order_id = f"order-{len(self.orders):05}"
        chosen = self.rng.sample([*self.skus, "sku-unknown"], self.rng.randint(1, 3))
        lines = [(sku, self.rng.randint(1, 3)) for sku in chosen]
        self.orders[order_id] = lines
        await self.shop.send("PlaceOrder", order_id, {
            "customer_id": f"cust-{self.rng.randint(1, 40)}",
            "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines]})

    def guess_total(self, order_id: str) -> Decimal:
        return sum((self.prices.get(sku, Decimal(1)) * quantity
                    for sku, quantity in self.orders[order_id]), Decimal("0.00"))

    def price(self) -> Decimal:
        return Decimal(self.rng.randint(100, 5000)) / 100


def probe_skus(partitions: int, tag: str) -> list[str]:
    """One new sku per commands partition, so that a command to each shows that partition
    is being processed again."""
    found: dict[int, str] = {}
    n = 0
    while len(found) < partitions:
        sku = f"probe-{tag}-{n}"
        found.setdefault(owning_partition(sku, partitions), sku)
        n += 1
    return [found[p] for p in range(partitions)]


def probe_payload(sku: str) -> dict[str, Any]:
    return {"name": f"Probe {sku}", "price": "1.00", "stock": 0}
