"""Analytics used by the API, UI, CLI and alerts: one implementation for all of them."""
