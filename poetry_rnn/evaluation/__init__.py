"""Measuring models and poems: the n-gram yardstick (``ngram``) and sample-quality measures (``quality``).
"""
