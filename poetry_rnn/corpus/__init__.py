"""From the raw corpus to ``data/poems.txt``: cleaning, reading, and the derived tables (titles, line ends).
"""
