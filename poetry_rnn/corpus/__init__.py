"""From the raw corpus to ``data/poems.txt`` and ``data/ci.txt``: cleaning, reading, the held-out split, and the
derived tables (titles, line ends, the ci tune patterns).
"""
