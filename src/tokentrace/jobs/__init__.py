"""Background jobs over the store: the periodic runner, tail sampling, retention, repricing.

They sit above the store and beside query: the server starts them, the CLI runs them once.
"""
