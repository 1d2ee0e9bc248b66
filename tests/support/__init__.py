"""What the tests share besides fixtures: helpers importable as ``support.<module>``."""
