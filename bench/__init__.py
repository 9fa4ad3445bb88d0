"""Micro-benchmarks. Run one with `.venv/bin/python -m bench.<name>` from the project root."""
