"""Agent tests run Faust's test_context() on an in-memory store, with no broker."""

import os

os.environ["SHOPSTREAM_STORE"] = "memory://"
os.environ["SHOPSTREAM_RETRY_BASE"] = "0.001"
