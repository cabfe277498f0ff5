"""``linlab-report``: a sweep folder read back as jobs, tables and figures.

``jobs`` reads the folder (one results reader, ``linlab.results``), ``tables`` and ``figures``
draw it, ``aggregate`` folds seeds, ``stability``, ``risk_curve`` and ``study`` add theory and
Optuna views, ``cli`` is the console entry point. Nothing here runs a sweep.
"""
