"""Peers genba did not write, run in their own environments (see ``./dev test``)."""
