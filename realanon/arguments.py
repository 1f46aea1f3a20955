"""The command-line vocabulary shared by ``realanon anonymize`` and ``realanon batch``.

Both commands choose what to anonymize with the same flags, defined once here, and turn
them into an :class:`~realanon.config.AnonymizerConfig` the same way.
"""

from __future__ import annotations

import argparse

from realanon.config import AnonymizerConfig, load_preset, parse_flat_overrides

# Flags copied into the config as they are, when given.
_PLAIN_FLAGS = ("harmonize", "threshold", "seed", "device")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--target --method --config --set --harmonize --threshold --seed --device`` to ``parser``."""
    parser.add_argument("--target", choices=("face", "body"), help="replace faces or whole bodies (default: face)")
    parser.add_argument("--method", help="generator: blur, pixelate, mask, donor, gan, diffusion, or a plug-in "
                        "(see `realanon models`)")
    parser.add_argument("--config", help="preset name in configs/ or a .toml file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set regions.face_margin=0.3 (repeatable)")
    parser.add_argument("--harmonize", help="histogram harmonization: none, match or latent")
    parser.add_argument("--threshold", type=float, help="minimum detection score (default: preset's / detector's)")
    parser.add_argument("--seed", type=int, help="base random seed (default 0)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default cpu)")


def config_from_args(args: argparse.Namespace) -> AnonymizerConfig:
    """Builds the config from the preset (``--config``), then the flags, then ``--set`` overrides.

    A new ``--target`` drops the preset's detector choice (the target's default is used), and a
    new ``--method`` drops the preset's method options.
    """
    config = load_preset(args.config) if args.config else AnonymizerConfig()
    changes: dict[str, object] = {}
    if args.target and args.target != config.target:
        changes.update(target=args.target, detector=None, detector_options={}, photo_detector_options=None)
    if args.method and args.method != config.method:
        changes.update(method=args.method, method_options={})
    for key in _PLAIN_FLAGS:
        value = getattr(args, key)
        if value is not None:
            changes[key] = value
    if changes:
        config = config.replace(**changes)
    if args.overrides:
        config = config.replace(**parse_flat_overrides(args.overrides))
    return config
