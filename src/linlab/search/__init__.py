"""Hyper-parameter search: an Optuna study driven by linlab's own Hydra sweeper.

``space`` reads a search space written in Hydra's override grammar, ``settings`` names the
samplers and pruners, ``study`` opens, resumes and feeds the study (``linlab.report.study``
draws its view).
The sweeper itself is the Hydra plugin ``hydra_plugins.linlab_optuna``; the per-epoch report
that lets a pruner stop a trial is ``linlab.callbacks.pruning``. Optuna is imported only where
a study is used, so linlab runs without the ``search`` extra.
"""
