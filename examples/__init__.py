"""Example data shipped with the application (the demo ward for a first try)."""
