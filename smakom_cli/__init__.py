"""smakom: write, check, preview and send the SmåKom newsletter."""


def __getattr__(name: str) -> str:
    # The version is pyproject.toml's, read from the installed package's metadata; only on
    # use, since importlib.metadata costs every command's start tens of milliseconds.
    if name == "__version__":
        from importlib.metadata import version

        return version("smakom")
    raise AttributeError(f"module 'smakom_cli' has no attribute {name!r}")
