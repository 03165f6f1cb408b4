"""lfm25-kernels benchmark suite: `python -m bench` (see bench/__main__.py)."""
