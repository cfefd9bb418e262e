"""The service with one more view registered: what adding a view to tables/registry.py does."""
