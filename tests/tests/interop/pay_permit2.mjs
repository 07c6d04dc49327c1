// The official x402 TypeScript client (@x402/fetch with the @x402/evm `exact` and `upto`
// schemes) paying this workspace's servers: a Permit2 `exact` route and a metered `upto`
// route. Run by tests/tests/official_permit2.rs from a directory holding node_modules with
// @x402/fetch, @x402/evm, @x402/core and viem (scripts/test installs them into .tools/interop).
//
// Environment: URLS (a JSON array of URLs to pay, in order), PAYER_KEY, NETWORK (CAIP-2),
// TOKEN (the asset), MAX (atomic units the client may pay per request), and optionally RPC_URL:
// a node the signer can `readContract` through, which lets the official client add the
// `eip2612GasSponsoring` extension (it reads the Permit2 allowance and the token's nonce).
// Prints one JSON line: for each URL, the status, body and decoded receipt the client saw.

import { registerExactEvmScheme } from "@x402/evm/exact/client";
import { UptoEvmScheme } from "@x402/evm/upto/client";
import { x402Client, wrapFetchWithPayment, decodePaymentResponseHeader } from "@x402/fetch";
import { createPublicClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
};

const results = [];
try {
  const account = privateKeyToAccount(env("PAYER_KEY"));
  let signer = account;
  if (process.env.RPC_URL) {
    const chain = createPublicClient({ transport: http(process.env.RPC_URL) });
    signer = {
      address: account.address,
      signTypedData: (message) => account.signTypedData(message),
      readContract: (args) => chain.readContract(args),
    };
  }
  const client = new x402Client();
  registerExactEvmScheme(client, { signer });
  // Registered like the exact scheme (every EVM network): a registration for one network would
  // shadow the wildcard one for the other scheme.
  client.register("eip155:*", new UptoEvmScheme(signer));
  client.setSpendControls({
    allowedAssets: [{ network: env("NETWORK"), asset: env("TOKEN"), maxAmountPerPayment: env("MAX") }],
  });
  const paying = wrapFetchWithPayment(fetch, client);
  for (const url of JSON.parse(env("URLS"))) {
    const result = { url };
    try {
      const response = await paying(url);
      result.status = response.status;
      result.body = await response.text();
      const receipt = response.headers.get("payment-response");
      result.settlement = receipt ? decodePaymentResponseHeader(receipt) : null;
    } catch (error) {
      result.error = String(error && error.stack ? error.stack : error);
    }
    results.push(result);
  }
} catch (error) {
  results.push({ error: String(error && error.stack ? error.stack : error) });
}
console.log(JSON.stringify(results));
