"""The networks that run at inference, each with ``save_pretrained`` / ``from_pretrained``, and their shipped
weights with model cards (``weights/``). Nothing here trains: fitting and training are ``synthguard.training``'s.
The image detector scores in numpy (``detector``) and imports no torch; its torch modules are ``detector_nets``."""
