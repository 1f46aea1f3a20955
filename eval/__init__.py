"""Evaluation protocols and dataset builders; run one with ``python -m eval CONFIG``."""
