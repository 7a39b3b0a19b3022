"""livematte: real-time human matting for live video."""

__version__ = "0.1.0"
