"""realanon: realistic anonymization of people in images and video.

Quick start::

    from realanon import load_preset, build_anonymizer
    anonymizer = build_anonymizer(load_preset("face_blur"))
    result = anonymizer(rgb_uint8_image)
    result.image, result.detections
"""

from realanon.config import AnonymizerConfig, RegionOptions, load_preset
from realanon.errors import ConfigError, InputError, RealanonError
from realanon.interfaces import Detector, Generator, PostProcessor
from realanon.pipeline import Anonymizer, build_anonymizer
from realanon.registry import DETECTORS, GENERATORS, POSTPROCESSORS, register_detector, register_generator
from realanon.structures import AnonymizedFrame, Detection, Detections, GenerationBatch, Region

__version__ = "0.1.0"

__all__ = [
    "AnonymizedFrame",
    "Anonymizer",
    "AnonymizerConfig",
    "ConfigError",
    "DETECTORS",
    "Detection",
    "Detections",
    "Detector",
    "GENERATORS",
    "GenerationBatch",
    "Generator",
    "InputError",
    "POSTPROCESSORS",
    "PostProcessor",
    "RealanonError",
    "Region",
    "RegionOptions",
    "build_anonymizer",
    "load_preset",
    "register_detector",
    "register_generator",
]
