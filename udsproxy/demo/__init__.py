"""The demo: a bundled config and small backends on socket files, for the no-config start."""
