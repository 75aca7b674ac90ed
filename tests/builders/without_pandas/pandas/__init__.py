"""Put first on a server's PYTHONPATH by the tests: `import pandas` fails there, as on a server
installed without the tests' extras (pandas is one of them, and pyarrow uses it when present)."""

raise ImportError("pandas is not installed where tokentrace's test servers run")
