"""ecdhe_async: forward-secret (ECDHE-only) TLS for asyncio services."""

__version__ = "0.1.0"
__all__ = ["__version__"]
