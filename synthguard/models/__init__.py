"""The networks that run at inference, each with ``save_pretrained`` / ``from_pretrained``, and their shipped
weights with model cards (``weights/``). Nothing here trains: fitting and training are ``synthguard.training``'s."""
