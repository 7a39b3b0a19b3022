"""``livematte batch``: many files through the ``process`` job, on one machine or a Ray cluster.

:mod:`.plan` turns inputs into jobs, :mod:`.job` runs one file (the one
function both runners call), :mod:`.local` and :mod:`.ray_runner` run the
jobs, :mod:`.run` ties a batch together (resume, sharing the cores),
:mod:`.report` shows and saves what happened.
"""
