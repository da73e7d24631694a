"""``ragmem serve``: collections, OpenAI-compatible chat with citations and agent memory over HTTP.

The application lives in ``ragmem.server.app`` (it needs ``ragmem[server]``); the keys file
loader in ``ragmem.server.auth`` needs nothing beyond the core.
"""

from ragmem.server.auth import KeyRing, Tenant, load_keys

__all__ = ["KeyRing", "Tenant", "load_keys"]
