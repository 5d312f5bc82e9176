"""In-process stand-ins for the systems kaput-not talks to, shipped for tests, the demo and bench.

Nothing here imports the code under test (``kaput_not.core``, ``netmaker``, ``controller``,
``cli``): a stand-in written from the server's documented behaviour cannot mirror a bug in our
client. Each stand-in's docstring lists what it does not model.
"""
