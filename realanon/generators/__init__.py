"""Generators: baselines (blur, pixelate, mask) and realistic synthesis, one file each."""
