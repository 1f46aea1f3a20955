"""Detectors: each returns :class:`realanon.structures.Detections` for an RGB frame."""
