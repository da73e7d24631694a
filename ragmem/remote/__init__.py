"""Shared machinery of remote adapters: one retry policy, rate and concurrency limits.

Vendor modules (``ragmem.remote.openai``, ``ragmem.remote.cohere``) import their SDK
and are loaded only by the adapters that need them.
"""

from ragmem.remote.resilience import RateLimiter, RetryPolicy

__all__ = ["RateLimiter", "RetryPolicy"]
