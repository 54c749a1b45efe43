"""SynthGuard: watermark and sign what you generate, verify what you receive."""

__version__ = "0.1.0"
