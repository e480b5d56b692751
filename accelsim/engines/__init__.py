"""One module per kind of hardware, each with a `Config` (its YAML schema) and `simulate`."""
