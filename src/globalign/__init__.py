"""globalign: audit what alignment does to who a language model serves."""

__version__ = "0.1.0"
