"""The pure domain: deciders, evolvers and the saga's react; it imports only the contracts."""
