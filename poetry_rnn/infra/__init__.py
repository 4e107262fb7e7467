"""Plumbing every layer may use: the one error type, atomic files, locks, progress, downloads, flags.

Nothing here knows about poems or models.
"""
