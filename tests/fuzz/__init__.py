"""Fuzz tests of the HTTP edge, driven by docs/openapi.yaml, against the real Flask app."""
