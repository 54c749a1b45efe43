"""Image watermarks: the interface (``base``), SynthGuard's TileMark (``tilemark``) and the attack suite
(``attacks``)."""
