"""Every read view, by name: the generic projector, tables and HTTP routes are made from this."""

from tables import customer_orders, orders, products, sales
from tables.view import View

VIEWS: dict[str, View] = {
    view.name: view for view in (orders.VIEW, products.VIEW, customer_orders.VIEW, sales.VIEW)
}
