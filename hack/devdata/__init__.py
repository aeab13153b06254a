"""Small real datasets made on the spot for the demo and the tests (development only)."""
