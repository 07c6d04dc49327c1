"""An MCP server priced with the official Python SDK (PyPI x402 2.25, x402.mcp), for the
interop tests of rmcp-x402.

Usage: paid_server.py <facilitator URL> <pay_to> <port>

Serves FastMCP over streamable HTTP on 127.0.0.1:<port>/mcp with two tools:
`forecast` (city -> text), priced at $0.01 on base-sepolia (eip155:84532) through the
x402.mcp payment wrapper and the facilitator at <facilitator URL>, and `ping` (free).
"""

import sys

from mcp.server.fastmcp import FastMCP
from x402 import x402ResourceServer
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.mcp import create_payment_wrapper
from x402.mechanisms.evm.exact import ExactEvmServerScheme
from x402.schemas import ResourceConfig

NETWORK = "eip155:84532"


def main() -> None:
    facilitator_url, pay_to, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

    resource_server = x402ResourceServer(HTTPFacilitatorClient(FacilitatorConfig(url=facilitator_url)))
    resource_server.register(NETWORK, ExactEvmServerScheme())
    resource_server.initialize()  # asks the facilitator's /supported
    accepts = resource_server.build_payment_requirements(
        ResourceConfig(scheme="exact", pay_to=pay_to, price="$0.01", network=NETWORK)
    )
    paid = create_payment_wrapper(resource_server, accepts=accepts)

    mcp = FastMCP("python-weather", host="127.0.0.1", port=port)

    @mcp.tool(name="forecast", description="Tomorrow's weather in a city ($0.01)")
    @paid
    async def forecast(city: str) -> str:
        return f"{city}: sunny (served by python)"

    @mcp.tool(name="ping", description="Free")
    async def ping() -> str:
        return "pong"

    mcp.run(transport="streamable-http")


if __name__ == "__main__":
    main()
