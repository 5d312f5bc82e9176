"""In-process stand-ins for the systems kaput-not talks to, for tests, the demo and bench.

A distribution of its own (``kaput-not-standins``, ``standins/`` in the repo) that kaput-not's
``demo`` and ``test`` extras install: the product's wheel and image hold none of it.

Nothing here imports kaput-not (``kaput_not``, the code under test): a stand-in written from
the server's documented behaviour cannot mirror a bug in our client. Each stand-in's docstring
lists what it does not model.
"""
