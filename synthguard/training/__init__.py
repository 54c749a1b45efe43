"""Training, calibrating and evaluating SynthGuard's models; imported only by ``cli``, ``bench`` and ``recipes/``.

The networks and what runs at inference are ``synthguard.models``; here are the loops (``gan``, ``vae``,
``detector``, ``ddpm``, ``text``), the data (``data``), augmentation, calibration fitting, evaluation, the records
they write (``records``) and the flows behind ``synthguard train`` / ``eval images`` (``runs``). A model's
architecture is its config (``architecture.build``); the training settings here hold optimiser and data settings
only. Optional dependencies are imported inside the functions that need them.
"""
