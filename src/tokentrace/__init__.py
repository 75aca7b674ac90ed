"""tokentrace."""
