"""The request handlers of the App Engine app.

Each module exposes ``routes(services) -> list[webapp2.Route]``, a route group given the
process's shared :class:`handlers.application.Services` (which handlers also reach as
``self.services`` in a :class:`handlers.base.JsonHandler`, or ``request.app.services``);
``main.ROUTE_GROUPS`` lists the groups the app serves and
:func:`handlers.application.create_app` builds the services, then the app.
"""
