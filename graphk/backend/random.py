"""In progress."""
__all__ = []
