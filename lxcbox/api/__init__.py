"""The Docker Engine API server (`lxcbox system service`): server.py (sockets, TLS, routing,
errors), http.py (what the endpoints share: threads, streams, hijacked connections), and one
module per object: system, containers, execs, images, objects (networks, volumes); translate.py
maps Docker's JSON shapes to the Client's calls.

May import: the Client's layer and below.  The CLI imports only server.serve.
"""
