"""K jobs of a sweep trained as stacked members of one run (``hydra/launcher=stacked``)."""
