"""Faust web views: commands in, views out, health and readiness."""
