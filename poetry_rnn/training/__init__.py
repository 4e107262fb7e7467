"""Training: the loop (``trainer``), its options, the lessons (poems, lyrics streams), steps, datasets, distribution.
"""
