"""Sockets: listening on bind addresses, connecting to servers, checks on socket files and peers."""
