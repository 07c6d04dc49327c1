// The routes of the x402 load harness on @x402/express 2.27: `/free` without payment,
// `/weather` at $0.01 (USDC) on base-sepolia (v2, exact) through an HTTP facilitator, paid to
// the same recipient as the harness's own server. Started by `x402-bench run --peers express`:
// prints {"plain": port, "http": port} once listening.
//
// Usage: node server.mjs --facilitator http://127.0.0.1:PORT
import express from "express";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { ExactEvmScheme } from "@x402/evm/exact/server";

const flag = process.argv.indexOf("--facilitator");
if (flag < 0 || !process.argv[flag + 1]) {
  console.error("usage: node server.mjs --facilitator URL");
  process.exit(2);
}
const facilitator = new HTTPFacilitatorClient({ url: process.argv[flag + 1] });
const resourceServer = new x402ResourceServer(facilitator).register(
  "eip155:84532",
  new ExactEvmScheme(),
);

const app = express();
app.get("/free", (req, res) => res.json({ forecast: "sunny" }));
app.use(
  paymentMiddleware(
    {
      "GET /weather": {
        accepts: {
          scheme: "exact",
          price: "$0.01",
          network: "eip155:84532",
          payTo: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
          maxTimeoutSeconds: 300,
        },
        description: "Current weather",
        mimeType: "application/json",
      },
    },
    resourceServer,
  ),
);
app.get("/weather", (req, res) => res.json({ forecast: "sunny" }));

const server = app.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  process.stdout.write(JSON.stringify({ plain: port, http: port }) + "\n");
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
