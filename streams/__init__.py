"""The Faust app, its settings, its topics and the message contracts."""
