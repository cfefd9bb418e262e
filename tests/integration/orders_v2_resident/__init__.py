"""The service after a deploy that makes orders v2 resident (test_promote)."""
