"""The suite's composition root: one process serving every OKR context (the embedded default)."""
