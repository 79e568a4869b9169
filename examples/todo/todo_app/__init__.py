"""A tiny third-party-style todo service, written twice (ASGI with Starlette, WSGI with Flask),
to show `stackbench bench --app` on an app that is not stackbench's own."""
