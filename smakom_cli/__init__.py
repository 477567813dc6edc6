"""smakom: write, check, preview and send the SmåKom newsletter."""

__version__ = "0.1.0"
