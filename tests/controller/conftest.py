"""Fixtures of the controller tests."""

from .stack import stack

__all__ = ["stack"]
