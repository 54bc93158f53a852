"""The bottom layer: the project's error types, atomic files, TOML, names. Imports nothing of mlops."""
