"""The service with a version 2 declared for customer-orders and sales (repartitioned views)."""
