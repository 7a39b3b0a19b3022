"""Offline quality mode (``livematte process --quality high``): slower, better edges.

:class:`QualityMatter` wraps the real-time engine: its coarse matte seeds an
unknown band that closed-form matting (:mod:`.closed_form`) and/or the DIM
refinement engine (:mod:`.refine`) re-solve, with foreground colours
unmixed and a temporal stabiliser (:mod:`.temporal`) against flicker.
"""
from livematte.quality.offline import METHODS, QualityMatter

__all__ = ["METHODS", "QualityMatter"]
