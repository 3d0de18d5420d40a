"""Backend: torch."""
