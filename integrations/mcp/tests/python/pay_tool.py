"""Calls a tool of an MCP server with the official Python SDK's paying client
(PyPI x402 2.25: x402.mcp.x402MCPSession over an mcp ClientSession), for the interop tests
of rmcp-x402.

Usage: X402_PRIVATE_KEY=0x... pay_tool.py <MCP endpoint URL> <tool> <arguments JSON>

Prints one JSON object: {"isError", "paymentMade", "texts", "paymentResponse"} and, with
X402_CALL_TWICE=1, the same for a second identical call under "second".
"""

import asyncio
import json
import os
import sys

from eth_account import Account
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client
from x402 import x402Client
from x402.mcp import x402MCPSession
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner


def summary(result) -> dict:
    response = result.payment_response
    if response is not None and hasattr(response, "model_dump"):
        response = response.model_dump(by_alias=True, exclude_none=True)
    return {
        "isError": bool(result.is_error),
        "paymentMade": bool(result.payment_made),
        "texts": [getattr(item, "text", None) for item in result.content],
        "paymentResponse": response,
    }


async def main() -> None:
    url, tool, arguments = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    client = x402Client()
    register_exact_evm_client(client, EthAccountSigner(Account.from_key(os.environ["X402_PRIVATE_KEY"])))
    async with streamablehttp_client(url) as (read, write, _):
        async with ClientSession(read, write) as session:
            paying = x402MCPSession(session, client)
            await paying.initialize()
            out = summary(await paying.call_tool(tool, arguments))
            if os.environ.get("X402_CALL_TWICE") == "1":
                out["second"] = summary(await paying.call_tool(tool, arguments))
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
