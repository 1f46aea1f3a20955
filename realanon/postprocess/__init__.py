"""Post-processors that harmonize generated regions with their scene.

* ``match`` (:class:`~realanon.postprocess.match.HistogramMatch`): per-channel histogram
  matching of each generated region to its context ring, blended through a feathered mask.
* ``latent`` (:class:`~realanon.postprocess.latent.LatentHistogramMatch`): optimises the
  generator's latents so the synthesised histograms approach the context's.

The pure histogram functions both use live in :mod:`realanon.postprocess.histogram`.
"""
