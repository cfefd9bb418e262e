"""The service after a deploy making customer-orders v2 resident (test_promote_customer_orders)."""
