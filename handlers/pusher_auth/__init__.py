"""The App Engine app's Pusher endpoints: the webapp2 extension
(:class:`handlers.pusher_auth.extension.PusherEndpoints`) and the webhook replay records
in Datastore (:mod:`.replay_store`). The answers themselves are pusherlib's
(:mod:`pusherlib.endpoints`, framework-neutral)."""
