"""Errors of the data layer: each names the file or folder and says what is wrong, in one line."""

from __future__ import annotations


class DataError(Exception):
    """A station dataset or image cannot be used as it is."""


class ImageTooLarge(DataError):
    """An image (or the size its header claims) over the pixel limit: refused before decoding."""
