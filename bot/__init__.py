"""Học vụ số: chat micro-lessons for the "Bình dân học vụ số" movement."""

__version__ = "0.1.0"
