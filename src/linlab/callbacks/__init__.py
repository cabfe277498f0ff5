"""Lightning callbacks configured in ``conf/callbacks/``: theory metrics, figures, predictions."""
