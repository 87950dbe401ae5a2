"""The App Engine app's request handlers: each module's ``routes(services)`` is a route group
(:func:`handlers.application.create_app`), listed in ``main.ROUTE_GROUPS``.
"""
