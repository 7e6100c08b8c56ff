"""Interop tests: the official Google clients and grpcurl against a Footfall subprocess.

Run in a pytest process of their own (`python -m pytest tests/interop`): the
official client packages and our generated modules cannot share a process.
"""
