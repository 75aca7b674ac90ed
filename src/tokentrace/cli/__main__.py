"""`python -m tokentrace.cli`, as the tests and benchmarks run it."""

from tokentrace.cli import main

main()
