"""Image generators whose output SynthGuard watermarks and signs: a GAN and a VAE trained on MNIST (weights ship in
``weights/``), and a backend for any local diffusers pipeline. Every one implements ``Generator.generate``."""

from synthguard.generators.base import GenerationResult, Generator

__all__ = ["GenerationResult", "Generator"]
