"""The Netmaker contract suite: what kaput-not relies on, checked over plain HTTP at a base URL.

By default it runs against the in-process emulator; set ``KAPUT_NOT_CONTRACT_URL`` (see
``conftest.py``) to run the very same tests against a real Netmaker server.
"""
