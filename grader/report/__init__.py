"""Human-readable reports of results."""
