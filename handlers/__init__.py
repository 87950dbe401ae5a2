"""The request handlers of the App Engine app.

Each module exposes ``routes(settings) -> list[webapp2.Route]``, a route group;
``main.ROUTE_GROUPS`` lists the groups the app serves and
:func:`handlers.application.create_app` builds the app and its shared services
(``self.services`` in a :class:`handlers.base.JsonHandler`, or ``request.app.services``).
"""
