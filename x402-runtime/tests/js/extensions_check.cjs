// Runs the official @x402/extensions helpers over what the Rust side produced and prints
// their answers as JSON. Input: the path of a JSON file written by tests/npm_extensions.rs.
"use strict";
const fs = require("fs");
const bazaar = require("@x402/extensions/bazaar");
const siwx = require("@x402/extensions/sign-in-with-x");
const path = require("path");
// The package's `exports` hide package.json: read it next to the resolved entry point.
const entry = require.resolve("@x402/extensions/bazaar");
const { version } = JSON.parse(
  fs.readFileSync(path.join(entry.slice(0, entry.lastIndexOf("dist")), "package.json"), "utf8"),
);

async function main() {
  const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const out = { version, bazaar: [], predicates: {}, siwx: [] };

  for (const c of input.bazaar) {
    const pr = c.paymentRequired;
    const ext = pr.extensions.bazaar;
    // What an x402 client sends back: the 402's resource, the chosen requirement and the
    // extensions echoed.
    const payload = {
      x402Version: 2,
      resource: pr.resource,
      accepted: pr.accepts[0],
      payload: {},
      extensions: pr.extensions,
    };
    out.bazaar.push({
      name: c.name,
      spec: bazaar.validateDiscoveryExtensionSpec(ext),
      schema: bazaar.validateDiscoveryExtension(ext),
      discovered: bazaar.extractDiscoveryInfo(payload, pr.accepts[0]),
      metadata: bazaar.sanitizeResourceServiceMetadata(pr.resource),
    });
  }

  // eip2612GasSponsoring: the reference declaration, and what its facilitator helpers make of
  // the info we sign.
  const extensions = require("@x402/extensions");
  out.eip2612 = {
    declaration: extensions.declareEip2612GasSponsoringExtension(),
    extracted: extensions.extractEip2612GasSponsoringInfo(input.eip2612.payload),
  };
  out.eip2612.valid =
    out.eip2612.extracted !== null &&
    extensions.validateEip2612GasSponsoringInfo(out.eip2612.extracted);

  const p = input.predicates;
  out.predicates.routeTemplate = p.routeTemplate.map((s) => bazaar.isValidRouteTemplate(s));
  out.predicates.serviceName = p.serviceName.map((s) => bazaar.isValidServiceName(s));
  out.predicates.iconUrl = p.iconUrl.map((s) => bazaar.isValidIconUrl(s));
  out.predicates.tags = p.tags.map((t) => bazaar.sanitizeTags(t) ?? null);

  for (const c of input.siwx) {
    const result = { name: c.name };
    try {
      const payload = siwx.parseSIWxHeader(c.header);
      result.message = payload.chainId.startsWith("solana:")
        ? siwx.formatSIWSMessage(payload, payload.address)
        : siwx.formatSIWEMessage(payload, payload.address);
      result.verify = await siwx.verifySIWxSignature(payload);
    } catch (e) {
      result.error = String(e && e.message ? e.message : e);
    }
    out.siwx.push(result);
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
