// The official x402 TypeScript packages against `x402ctl serve`: an @x402/express server
// whose facilitator is the URL given, paid by an @x402/fetch client with an @x402/evm signer.
//
// Run by x402ctl/tests/official.rs from a directory holding node_modules with @x402/express,
// @x402/fetch, @x402/evm, @x402/core, express and viem (scripts/test installs them into
// .tools/interop). Prints one JSON line: what the client saw.
//
// Environment: FACILITATOR_URL, FACILITATOR_TOKEN, NETWORK (CAIP-2), TOKEN (the asset),
// TOKEN_NAME, TOKEN_VERSION (its EIP-712 domain), PRICE (atomic units), PAY_TO, PAYER_KEY.

import express from "express";
import { paymentMiddleware, x402ResourceServer } from "@x402/express";
import { HTTPFacilitatorClient } from "@x402/core/server";
import { ExactEvmScheme } from "@x402/evm/exact/server";
import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { x402Client, wrapFetchWithPayment, decodePaymentResponseHeader } from "@x402/fetch";
import { privateKeyToAccount } from "viem/accounts";

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
};

const network = env("NETWORK");
const token = env("FACILITATOR_TOKEN");
const facilitator = new HTTPFacilitatorClient({
  url: env("FACILITATOR_URL"),
  createAuthHeaders: async () => {
    const headers = { Authorization: `Bearer ${token}` };
    return { verify: headers, settle: headers, supported: headers };
  },
});
const resourceServer = new x402ResourceServer(facilitator).register(network, new ExactEvmScheme());

const app = express();
app.use(
  paymentMiddleware(
    {
      "GET /weather": {
        accepts: {
          scheme: "exact",
          network,
          payTo: env("PAY_TO"),
          price: {
            amount: env("PRICE"),
            asset: env("TOKEN"),
            extra: { name: env("TOKEN_NAME"), version: env("TOKEN_VERSION") },
          },
          maxTimeoutSeconds: 300,
        },
        description: "Current weather",
        mimeType: "application/json",
      },
    },
    resourceServer,
  ),
);
app.get("/weather", (_req, res) => res.json({ forecast: "sunny", temperature: 21 }));

const listener = app.listen(0, "127.0.0.1", async () => {
  const url = `http://127.0.0.1:${listener.address().port}/weather`;
  const result = {};
  try {
    const unpaid = await fetch(url);
    result.unpaidStatus = unpaid.status;
    result.challenge = unpaid.headers.get("payment-required") !== null;

    const client = new x402Client();
    registerExactEvmScheme(client, { signer: privateKeyToAccount(env("PAYER_KEY")) });
    // The local chain's token is not one of the client's default assets: allow it, capped at
    // the price.
    client.setSpendControls({
      allowedAssets: [{ network, asset: env("TOKEN"), maxAmountPerPayment: env("PRICE") }],
    });
    const paying = wrapFetchWithPayment(fetch, client);
    const paid = await paying(url);
    result.status = paid.status;
    result.body = await paid.json().catch(() => null);
    const receipt = paid.headers.get("payment-response");
    result.settlement = receipt ? decodePaymentResponseHeader(receipt) : null;
  } catch (error) {
    result.error = String(error && error.stack ? error.stack : error);
  }
  console.log(JSON.stringify(result));
  listener.close();
  process.exit(result.error ? 1 : 0);
});
