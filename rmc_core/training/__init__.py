"""One training loop for every model (loop.py) with events that compressions and
objectives hook into (hooks.py), batched prediction (predict.py), and what a loop needs
around it: length-grouped batches, bf16 autocast and a cooperative stop."""
