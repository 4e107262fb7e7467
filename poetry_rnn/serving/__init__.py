"""Serving poems: the web page and JSON API (``webapp``), the SavedModel export.
"""
