// The x402 browser paywall. Reads the page's data (#x402-data), connects an EIP-1193 wallet,
// signs an EIP-3009 TransferWithAuthorization with eth_signTypedData_v4, fetches this URL
// again with a PAYMENT-SIGNATURE header and shows what was bought. No dependencies.
// Served by x402-runtime (src/paywall); indentation and whole-line comments are stripped.
(() => {
  "use strict";
  const data = JSON.parse(document.getElementById("x402-data").textContent);
  const required = data.paymentRequired;
  const options = data.options;
  const $ = (id) => document.getElementById(id);
  const button = $("x402-pay");
  if (!button) return;
  const status = $("x402-status") || button.insertAdjacentElement("afterend", document.createElement("p"));
  const optionSelect = $("x402-option");
  const walletSelect = $("x402-wallet");

  // Payment builders by CAIP-2 namespace: (option, accepted) resolves to the `payload` of a
  // v2 PaymentPayload. Solana: add `solana` with a builder that connects a Wallet Standard
  // wallet (standard:connect), has it sign the transfer transaction (solana:signTransaction)
  // and resolves to { transaction: <base64> }.
  const builders = { eip155: payWithEvm };
  window.x402Paywall = { builders, data };

  class PaywallError extends Error {}
  const fail = (text) => new PaywallError(text);

  function show(text, kind) {
    status.textContent = text;
    status.className = kind ? "x402-" + kind : "";
  }
  function setText(id, text) {
    const element = $(id);
    if (element) element.textContent = text;
  }
  function reveal(select) {
    if (select && select.parentElement) select.parentElement.hidden = false;
  }

  // --- ways to pay -------------------------------------------------------------------------
  // EVM entries are paid with EIP-3009; Permit2 (extra.assetTransferMethod) needs a builder of its own.
  const method = (accepted) => (accepted.extra && accepted.extra.assetTransferMethod) || "eip3009";
  const payable = (option) => {
    const accepted = required.accepts[option.index];
    return Boolean(builders[option.family]) && Boolean(accepted) && accepted.network === option.network &&
      (option.family !== "eip155" || method(accepted) === "eip3009");
  };
  const label = (option) => option.price + " " + option.symbol + " on " + option.networkName +
    (option.prepaid ? " (prepaid balance)" : "") + (payable(option) ? "" : " (not payable in the browser yet)");
  let chosen = options.findIndex(payable);
  if (optionSelect && options.length > 1) {
    options.forEach((option, i) => {
      const item = new Option(label(option), String(i));
      item.disabled = !payable(option);
      optionSelect.add(item);
    });
    optionSelect.value = String(Math.max(chosen, 0));
    optionSelect.addEventListener("change", () => {
      chosen = Number(optionSelect.value);
      describe(options[chosen]);
    });
    reveal(optionSelect);
  }
  function describe(option) {
    setText("x402-price", option.price + " " + option.symbol);
    setText("x402-network", option.networkName);
  }
  if (chosen < 0) {
    button.disabled = true;
    show("None of the ways to pay for this can be used from the browser yet.", "error");
  } else if (required.error && required.error.startsWith("entitlement_")) {
    // Access bought earlier did not work any more.
    const why = {
      entitlement_expired: "Your access has expired.",
      entitlement_exhausted: "You have used up the access you bought.",
      entitlement_balance_insufficient: "Your prepaid balance is too low for this.",
    }[required.error] || "Your earlier access was not accepted.";
    show(why + " Pay again to continue. (" + required.error + ")", "busy");
  }

  // --- wallets (EIP-6963 discovery, then window.ethereum) ----------------------------------
  const wallets = [];
  window.addEventListener("eip6963:announceProvider", (event) => {
    const detail = event.detail;
    if (!detail || !detail.provider || !detail.info || wallets.some((w) => w.info.uuid === detail.info.uuid)) return;
    wallets.push(detail);
    if (walletSelect && wallets.length > 1) {
      walletSelect.replaceChildren(...wallets.map((w, i) => new Option(w.info.name, String(i))));
      reveal(walletSelect);
    }
  });
  window.dispatchEvent(new Event("eip6963:requestProvider"));

  function wallet() {
    if (wallets.length) return wallets[walletSelect && wallets.length > 1 ? Number(walletSelect.value) || 0 : 0].provider;
    if (window.ethereum && typeof window.ethereum.request === "function") return window.ethereum;
    throw fail("No browser wallet was found. Install a wallet extension (MetaMask, Coinbase Wallet, Rabby…) or open this page in your wallet's browser, then reload.");
  }
  const errorCode = (error) => error && (error.code !== undefined ? error.code :
    error.data && error.data.originalError && error.data.originalError.code);
  async function ask(provider, method, params) {
    try {
      return await provider.request(params === undefined ? { method } : { method, params });
    } catch (error) {
      const code = errorCode(error);
      if (code === 4001) {
        throw fail(method === "eth_signTypedData_v4" ? "You declined to sign the payment. Nothing was paid." : "You declined the wallet's request.");
      }
      if (code === -32002) throw fail("Your wallet is already waiting for an answer: open it to continue.");
      if (code === 4100) throw fail("The wallet has not authorised this page. Connect it and try again.");
      throw fail("The wallet reported an error: " + ((error && error.message) || String(error)));
    }
  }

  async function ensureChain(provider, option) {
    const wanted = "0x" + option.chainId.toString(16);
    const current = async () => parseInt(await ask(provider, "eth_chainId"), 16);
    if ((await current()) === option.chainId) return;
    show("Switch your wallet to " + option.networkName + "…", "busy");
    try {
      await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId: wanted }] });
    } catch (error) {
      const code = errorCode(error);
      if (code === 4902 && option.addChain) {
        await ask(provider, "wallet_addEthereumChain", [Object.assign({ chainId: wanted }, option.addChain)]);
      } else if (code === 4001) {
        throw fail("You declined to switch networks. This payment is on " + option.networkName + ".");
      } else {
        throw fail("Your wallet could not switch to " + option.networkName + " (chain id " + option.chainId + "). Switch networks in the wallet, then try again.");
      }
    }
    const now = await current();
    if (now !== option.chainId) {
      throw fail("Your wallet is on chain " + now + ", but this payment is on " + option.networkName + " (chain id " + option.chainId + "). Switch networks in the wallet, then try again.");
    }
  }

  // --- EVM exact: EIP-3009 TransferWithAuthorization ---------------------------------------
  const field = (name, type) => ({ name, type });
  async function payWithEvm(option, accepted) {
    const provider = wallet();
    show("Connecting your wallet…", "busy");
    const accounts = await ask(provider, "eth_requestAccounts");
    const from = Array.isArray(accounts) ? accounts[0] : undefined;
    if (typeof from !== "string") throw fail("The wallet did not share an account.");
    await ensureChain(provider, option);
    const extra = accepted.extra || {};
    if (!extra.name || !extra.version) throw fail("The server did not name the token's EIP-712 domain (extra.name, extra.version), so there is nothing safe to sign.");
    const now = Math.floor(Date.now() / 1000);
    const nonce = "0x" + Array.from(crypto.getRandomValues(new Uint8Array(32)), (b) => b.toString(16).padStart(2, "0")).join("");
    const authorization = {
      from,
      to: accepted.payTo,
      value: accepted.amount,
      validAfter: String(now - 600),
      validBefore: String(now + accepted.maxTimeoutSeconds),
      nonce,
    };
    const typedData = {
      types: {
        EIP712Domain: [field("name", "string"), field("version", "string"), field("chainId", "uint256"), field("verifyingContract", "address")],
        TransferWithAuthorization: [field("from", "address"), field("to", "address"), field("value", "uint256"),
          field("validAfter", "uint256"), field("validBefore", "uint256"), field("nonce", "bytes32")],
      },
      primaryType: "TransferWithAuthorization",
      domain: { name: extra.name, version: extra.version, chainId: option.chainId, verifyingContract: accepted.asset },
      message: authorization,
    };
    show("Confirm the payment of " + option.price + " " + option.symbol + " in your wallet…", "busy");
    const signature = await ask(provider, "eth_signTypedData_v4", [from, JSON.stringify(typedData)]);
    if (typeof signature !== "string" || !/^0x[0-9a-fA-F]+$/.test(signature)) throw fail("The wallet answered with something that is not a signature.");
    return { signature: withLegacyV(signature), authorization };
  }
  // Some wallets (hardware ones) return v as 0/1; tokens expect 27/28.
  function withLegacyV(signature) {
    if (signature.length !== 132) return signature;
    const v = parseInt(signature.slice(130), 16);
    return v < 27 ? signature.slice(0, 130) + (v + 27).toString(16) : signature;
  }

  // --- paying ------------------------------------------------------------------------------
  function encode(text) {
    let binary = "";
    for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
    return btoa(binary);
  }
  function decode(base64) {
    return new TextDecoder().decode(Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)));
  }

  async function pay() {
    const option = options[chosen];
    if (!option || !payable(option)) throw fail("Choose a way to pay that works in the browser.");
    const accepted = required.accepts[option.index];
    const payload = await builders[option.family](option, accepted);
    const body = { x402Version: 2, resource: required.resource, accepted, payload };
    if (required.extensions) body.extensions = required.extensions;
    show("Sending the payment…", "busy");
    let response;
    try {
      response = await fetch(location.href, {
        headers: { "PAYMENT-SIGNATURE": encode(JSON.stringify(body)) },
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (error) {
      throw fail("The server could not be reached (" + error.message + "). Try again.");
    }
    if (!response.ok) throw await refusal(response, option);
    await deliver(response);
  }

  async function refusal(response, option) {
    let reason = "";
    let message = "";
    try {
      const body = await response.clone().json();
      reason = String(body.error || "");
      message = String(body.message || "");
    } catch (_) {
      // Not JSON: fall back to the header.
    }
    if (!reason) {
      try {
        reason = String(JSON.parse(decode(response.headers.get("PAYMENT-REQUIRED") || "")).error || "");
      } catch (_) {
        // No reason given.
      }
    }
    const words = explain(reason.toLowerCase(), option) ||
      (message ? "The server refused the payment: " + message : "The server answered " + response.status + " " + response.statusText + ".");
    return fail(words + (reason ? " (" + reason + ")" : ""));
  }
  function explain(reason, option) {
    if (reason.includes("insufficient")) {
      return "Your wallet does not hold enough " + option.symbol + " on " + option.networkName + " to pay " +
        option.price + " " + option.symbol + ". Nothing was charged.";
    }
    if (reason.includes("nonce")) return "This payment authorization was already used. Press the button to sign a new one.";
    if (reason.includes("valid_before") || reason.includes("expired")) return "The authorization expired before the server received it. Check your computer's clock, then try again.";
    if (reason.includes("valid_after") || reason.includes("early")) return "The authorization is not valid yet. Check your computer's clock, then try again.";
    if (reason.includes("signature")) return "The server could not verify the wallet's signature. Smart-contract wallets may not be accepted here.";
    if (reason.includes("facilitator") || reason.includes("unavailable") || reason.includes("timeout")) return "The payment service is not answering right now. Try again in a moment.";
    return "";
  }

  async function deliver(response) {
    const type = (response.headers.get("content-type") || "").toLowerCase();
    if (type.startsWith("text/html") || type.startsWith("application/xhtml")) {
      const html = await response.text();
      document.open();
      document.write(html);
      document.close();
      return;
    }
    let transaction = "";
    try {
      transaction = JSON.parse(decode(response.headers.get("PAYMENT-RESPONSE") || "")).transaction || "";
    } catch (_) {
      // A receipt is optional here.
    }
    const content = $("x402-content") || document.body.appendChild(document.createElement("div"));
    let shown;
    if (type.startsWith("image/")) {
      shown = new Image();
      shown.alt = "What you bought";
      shown.src = URL.createObjectURL(await response.blob());
    } else if (type.includes("json") || type.startsWith("text/")) {
      let text = await response.text();
      if (type.includes("json")) {
        try {
          text = JSON.stringify(JSON.parse(text), null, 2);
        } catch (_) {
          // Shown as sent.
        }
      }
      shown = document.createElement("pre");
      shown.textContent = text;
    } else {
      shown = document.createElement("a");
      shown.href = URL.createObjectURL(await response.blob());
      shown.download = "";
      shown.textContent = "Download what you bought";
    }
    content.replaceChildren(shown);
    content.hidden = false;
    button.hidden = true;
    show("Paid" + (transaction ? " (transaction " + transaction + ")" : "") + ".", "done");
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await pay();
    } catch (error) {
      show(error instanceof PaywallError ? error.message : "Something went wrong: " + ((error && error.message) || error), "error");
      button.textContent = "Try again";
    } finally {
      button.disabled = false;
    }
  });
})();
