"""Audio watermarks: the interface (``base``), SynthGuard's own mark and the attack suite."""
