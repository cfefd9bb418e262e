"""Fault tests: seeded load on a real local Kafka while workers and brokers fail; then verify."""
