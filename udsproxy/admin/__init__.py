"""The stats socket (HAProxy's runtime API): command parsing, execution and the protocol."""
