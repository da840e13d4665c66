"""The recommendation algorithm: pure numpy/scipy, with no Django import anywhere.

Everything here works on integer item and user *indices* and plain arrays, so it can be
trained, evaluated offline and benchmarked without a database, and unit-tested on tiny
hand-checkable data. ``xo_recommender.services`` is the only caller that maps host
ids to indices and back.
"""
