"""A host whose recommender users are a profile model, not ``AUTH_USER_MODEL``.

Its own settings and database: ``XO_RECOMMENDER_USER_MODEL`` shapes the interaction
table's foreign key at migrate time, as ``AUTH_USER_MODEL`` does, so it cannot be
switched inside the main test run. ``tests/test_request_user.py`` runs ``scenario``.
"""
