"""Building blocks of the sample-region generator (``data_samples/generate.py``).

One module per product; each function says what it models and where its formula comes from.
"""
