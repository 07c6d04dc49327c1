//! Caps, budgets, the approval hook and network filters refuse before anything is signed, and
//! say why, listing what the server accepts.

use crate::support;

use std::sync::{Arc, Mutex};

use reqwest_x402::{
    Approval, PaymentProposal, PaymentResponseExt, PaymentSigner, RefusalReason, X402Error,
    payment_error,
};
use support::{CENT, CountingSigner, Flavor, builder};
use x402_protocol::{AssetInfo, NetworkInfo, U256};

/// Sends GET `path` and returns the payment error it failed with.
async fn refused(client: &reqwest_middleware::ClientWithMiddleware, url: String) -> String {
    let error = client.get(url).send().await.expect_err("must not pay");
    let refusal = payment_error(&error).expect("an x402 refusal");
    refusal.to_string()
}

fn reasons(error: &reqwest_middleware::Error) -> Vec<RefusalReason> {
    match payment_error(error) {
        Some(X402Error::NoPayableOffer { refusals, .. }) => {
            refusals.iter().map(|r| r.reason.clone()).collect()
        }
        other => panic!("expected NoPayableOffer, got {other:?}"),
    }
}

#[tokio::test]
async fn the_per_request_cap_refuses_before_signing() {
    let server = support::spawn(Flavor::Dual).await;
    let signer = CountingSigner::new();
    server.fund(signer.address(), 1_000 * CENT);

    // An explicit cap below the price.
    let client = builder(&signer)
        .max_per_request("$0.005")
        .build()
        .unwrap()
        .client()
        .unwrap();
    let error = client
        .get(format!("{}/weather", server.url))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        reasons(&error),
        [RefusalReason::OverCap {
            amount: "0.01 USDC".into(),
            cap: "$0.005".into()
        }]
    );
    let text = payment_error(&error).unwrap().to_string();
    assert!(
        text.contains(
            "0.01 USDC on base-sepolia (eip155:84532) to 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
        ),
        "the error lists what the server accepts: {text}"
    );
    assert!(
        text.contains("over the per-request cap of $0.005"),
        "{text}"
    );

    // The default cap ($0.10) refuses a $5 route.
    let client = builder(&signer).build().unwrap().client().unwrap();
    let text = refused(&client, format!("{}/expensive", server.url)).await;
    assert!(text.contains("5 USDC") && text.contains("$0.10"), "{text}");

    // A cap in another token does not cover USDC: fail closed.
    let client = builder(&signer)
        .max_per_request("1 EURC")
        .build()
        .unwrap()
        .client()
        .unwrap();
    let error = client
        .get(format!("{}/weather", server.url))
        .send()
        .await
        .unwrap_err();
    assert_eq!(reasons(&error), [RefusalReason::NoCap("USDC".into())]);

    assert_eq!(signer.signed(), 0, "nothing was signed");
    assert!(
        server.payments_seen().is_empty(),
        "no payment reached the server"
    );
    assert!(server.ledger().transfers().is_empty());
}

#[tokio::test]
async fn the_budget_allows_what_fits_then_refuses_before_signing() {
    let server = support::spawn(Flavor::Dual).await;
    let signer = CountingSigner::new();
    server.fund(signer.address(), 1_000 * CENT);
    let x402 = builder(&signer).budget("$0.025").build().unwrap();
    let client = x402.client().unwrap();
    for _ in 0..2 {
        let response = client
            .get(format!("{}/weather", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let error = client
        .get(format!("{}/weather", server.url))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        reasons(&error),
        [RefusalReason::OverBudget {
            amount: "0.01 USDC".into(),
            remaining: "$0.005".into()
        }]
    );
    assert_eq!(signer.signed(), 2, "the third payment was never signed");
    assert_eq!(server.payments_seen().len(), 2);
    assert_eq!(server.ledger().transfers().len(), 2);
    assert_eq!(x402.spent()[0].1, "$0.02");
    assert_eq!(x402.remaining_budget()[0].1, "$0.005");
    assert_eq!(x402.history().len(), 2);

    // Concurrent requests cannot overspend: of five at once with room for two, two pay.
    let signer = CountingSigner::new();
    server.fund(signer.address(), 1_000 * CENT);
    let x402 = builder(&signer).budget("$0.02").build().unwrap();
    let client = x402.client().unwrap();
    let results = futures_join_all(
        (0..5)
            .map(|_| client.get(format!("{}/weather", server.url)).send())
            .collect(),
    )
    .await;
    let paid = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(paid, 2);
    assert_eq!(signer.signed(), 2);
}

/// Joins futures without pulling in the `futures` crate.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: Vec<F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn the_approval_hook_sees_the_proposal_and_can_refuse() {
    let server = support::spawn(Flavor::Dual).await;
    let signer = CountingSigner::new();
    server.fund(signer.address(), 1_000 * CENT);
    let proposals: Arc<Mutex<Vec<PaymentProposal>>> = Arc::default();
    let x402 = builder(&signer)
        .budget("$1")
        .approve({
            let proposals = proposals.clone();
            move |proposal: PaymentProposal| {
                let proposals = proposals.clone();
                async move {
                    let refuse = proposal.url.ends_with("/multi");
                    proposals.lock().unwrap().push(proposal);
                    if refuse {
                        Approval::Refuse("not on my shopping list".into())
                    } else {
                        Approval::Approve
                    }
                }
            }
        })
        .build()
        .unwrap();
    let client = x402.client().unwrap();

    let error = client
        .get(format!("{}/multi", server.url))
        .send()
        .await
        .unwrap_err();
    let Some(X402Error::NotApproved { reason, proposal }) = payment_error(&error) else {
        panic!("{error}")
    };
    assert_eq!(reason, "not on my shopping list");
    assert_eq!(proposal.amount_display(), "0.02 USDC");
    let text = payment_error(&error).unwrap().to_string();
    assert!(
        text.contains("refused to pay 0.02 USDC") && text.contains("not on my shopping list"),
        "{text}"
    );
    assert_eq!(signer.signed(), 0, "refused before signing");
    assert!(server.payments_seen().is_empty());
    assert_eq!(
        x402.spent()[0].1,
        "$0.00",
        "a refused payment does not use the budget"
    );

    let response = client
        .get(format!("{}/weather", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.payment().is_some());
    let proposals = proposals.lock().unwrap();
    let approved = &proposals[1];
    assert_eq!(approved.method, "GET");
    assert_eq!(approved.resource, format!("{}/weather", server.url));
    assert_eq!(approved.description.as_deref(), Some("Current weather"));
    assert_eq!(approved.network.name, "base-sepolia");
    assert_eq!(approved.amount, U256::from(CENT));
    assert_eq!(approved.pay_to, support::pay_to());
    assert_eq!(signer.signed(), 1);
}

#[tokio::test]
async fn networks_outside_the_allowed_list_or_unknown_are_refused() {
    // The server also offers a local chain this client has never heard of, first.
    let token = AssetInfo::usdc(
        "0x5FbDB2315678afecb367f032d93F642f64180aa3"
            .parse()
            .unwrap(),
        "USD Coin",
        "2",
    );
    let devchain = NetworkInfo::new("devchain", 31337, token);
    let server = support::spawn_with(Flavor::Dual, |b| {
        b.network(devchain.clone())
            .default_network("devchain")
            .default_network("base-sepolia")
    })
    .await;
    let signer = CountingSigner::new();
    server.fund(signer.address(), 100 * CENT);
    let url = format!("{}/anywhere", server.url);

    // Unknown networks are skipped; the known one is paid.
    let response = builder(&signer)
        .build()
        .unwrap()
        .client()
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.payment().unwrap().network.name, "base-sepolia");
    assert_eq!(signer.signed(), 1);

    // Allowed networks only: nothing fits, and the error says why for each offer.
    let client = builder(&signer)
        .networks(["base"])
        .build()
        .unwrap()
        .client()
        .unwrap();
    let error = client.get(&url).send().await.unwrap_err();
    let reasons = reasons(&error);
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        matches!(&reasons[0], RefusalReason::UnknownNetwork(e) if e.contains("eip155:31337")),
        "{reasons:?}"
    );
    assert!(
        matches!(&reasons[1], RefusalReason::NetworkNotAllowed(n) if n.contains("base-sepolia")),
        "{reasons:?}"
    );
    assert_eq!(signer.signed(), 1, "nothing more was signed");

    // Registered on the client too, the local chain is payable.
    let client = builder(&signer)
        .network(devchain.clone())
        .networks(["devchain"])
        .build()
        .unwrap()
        .client()
        .unwrap();
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.payment().unwrap().network.chain_id(), Some(31337));
    assert_eq!(
        server.balance("devchain", signer.address()),
        U256::from(99 * CENT)
    );

    // Naming a network the client does not know is a configuration error.
    let err = builder(&signer).networks(["devchain"]).build().unwrap_err();
    assert!(err.to_string().contains("devchain"), "{err}");
}
