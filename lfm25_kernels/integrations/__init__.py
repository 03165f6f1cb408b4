"""Explicit, per-model integrations of lfm25_kernels into other libraries (no global patching)."""
