"""Sockets: listening on bind addresses (``listen``) and connecting to servers (``connect``)."""
