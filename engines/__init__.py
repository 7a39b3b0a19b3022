"""Shipped livematte engines: ``NAME.onnx`` + ``NAME.json`` pairs.

A data-only package, installed as ``livematte_engines``, so the runtime can
find engines with :mod:`importlib.resources` wherever pip put them
(``livematte.registry``). The manifest format is docs/engine-manifest.md.
"""
