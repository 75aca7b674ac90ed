"""`python -m tokentrace.cli`, as the tests and benchmarks run it."""

from tokentrace.cli import main

# Guarded: ingest worker processes import the main module again, and must not run the CLI.
if __name__ == "__main__":
    main()
