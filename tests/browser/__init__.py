"""Helpers for tests that need a real server or browser (GraphiQL in Chromium, raw HTTP)."""
