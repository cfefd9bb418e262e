"""Read views: each view's pure projector, and the registry the tables are made from."""
