"""Stored media: decoding, checking and measuring uploads and outputs by their
content (media.py, PyAV and Pillow, no Django), and deleting stored files only
when no row points at them any more (storage.py).

media.py imports nothing from the project; storage.py imports jobs.models
only.
"""
