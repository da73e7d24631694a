"""``ragmem mcp``: agent memory and document search as Model Context Protocol tools.

``toolbox`` holds what the tools do (no SDK needed), ``tools`` declares them on the
official ``mcp`` SDK (extra ``ragmem[mcp]``), ``command`` runs them over stdio or HTTP.
"""

__all__: list[str] = []
