"""Thin LFM2 model (see issue 6)."""
