"""Ray Tune class Trainables, one module per fine-tuning method.

Each ``trainables.<m>`` wraps the Ray-free method class of ``ftsweep.methods.<m>`` in a
:class:`~ftsweep.trial.MethodTrainable` and defines the method's registry record
``METHOD`` (:class:`ftsweep.registry.MethodRecord`). The method list is the
``[project.entry-points."ftsweep.methods"]`` table of ``pyproject.toml``, loaded by
:func:`ftsweep.registry.methods`.
"""
