"""The REST API: DRF viewsets over ``xo_recommender.services``.

Mount it in the host's ``urls.py``::

    path("api/recommend/", include("xo_recommender.api.urls"))

Authentication, renderers and throttle rates come from the host's ``REST_FRAMEWORK``
settings; see ``xo_recommender.api.permissions`` for who may do what.
"""
