"""Stored media: decoding, checking and measuring uploads and outputs by their
content (media.py, PyAV and Pillow, no Django); reading stored files through
Django's storage API, local disk or S3, and deleting them only when no row
points at them any more (storage.py); serving them to browsers and clients
(delivery.py: Range, or a signed redirect to the object store).

media.py imports nothing from the project; storage.py imports jobs.models
only; delivery.py imports storage.py and jobs.net.
"""
