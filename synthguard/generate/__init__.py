"""Generate responsibly: the generation backends (``backends``, ``diffusion``; the interface in ``base``), text
sampling with the watermark in the loop (``sampling``), and the flows that stamp every output (``runs`` for images,
``text`` for texts)."""
