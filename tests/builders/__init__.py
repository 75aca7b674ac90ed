"""Helpers tests share: one module per idea, imported by test modules instead of each other."""
