import pytest

pytest.importorskip("mcp", reason="the MCP server needs the mcp extra: pip install 'ragmem[mcp]'")
