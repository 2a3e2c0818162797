"""Our computations beside the official code's on the same inputs, one module per method (see compare_official.py)."""
