"""Serving trained runs over HTTP: the input contract, the standalone server a bundle carries,
the studio's own server (explanations, a torch runtime) and local server processes."""
