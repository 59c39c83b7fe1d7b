"""The read side: figures from the projections (repository.py), shaped and suppressed
(views.py, cells.rules), scoped to the caller (scope.py), served as JSON and CSV (routes.py)."""
