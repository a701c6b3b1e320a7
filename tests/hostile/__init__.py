"""Hostile and broken inputs, interruptions and concurrency (see corpus.py and the test_* modules)."""
