"""The web page: served by ``todo-operator api`` at ``/``, same origin as the API (docs/WEB.md).

Server-rendered HTML (Jinja2) and one small script of our own, no build step
and nothing from a CDN; why, in docs/ARCHITECTURE.md. ``site.install`` adds
the page to the app the composition root built.
"""
