//! Step 2: entitlements. A token bought earlier lets a request through without a payment if it
//! is good for this request: same scope (the path, or a named group), the same method and
//! handler for path grants, and a price paid at least as high as this request's. This module
//! also plans the grant a payment buys, opens its counter before settlement, and delivers the
//! token after it.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use x402_protocol::verify::VerifiedPayment;
use x402_protocol::{ChainAddress, ProtocolVersion, U256};

use crate::challenge::{AcceptOption, Challenge, PreparedRoute};
use crate::entitlement::{
    Claims, ENTITLEMENT_HEADER, ENTITLEMENT_SCOPE_HEADER, EntitlementError, GrantKind,
    TOKEN_PREFIX, cookie_name, cookie_value,
};
use crate::gate::{Admission, Gate, Pending, PendingKind, store_rejection};
use crate::hooks::{Redemption, RequestSummary};
use crate::payment::{Access, Grant, PaymentInfo};
use crate::rejection::Rejection;
use crate::request::RequestView;
use crate::route::RouteSpec;
use crate::store::{MAX_COUNTER, Take};

/// How long a grant lasts when the route sets no `access` duration (use-limited grants and
/// prepaid sessions).
pub const DEFAULT_GRANT_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Extra time a counter outlives its token, so a token never finds its counter gone early.
const COUNTER_MARGIN: Duration = Duration::from_secs(60);

/// Where a grant is good, and how it is delivered.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    /// `path:/reports/daily` or `group:reports`.
    pub(crate) id: String,
    /// The path prefix clients send the token to (`x402-entitlement-scope`).
    pub(crate) path_prefix: String,
    /// Whether the cookie gets `Secure` (the resource is served over https).
    pub(crate) secure: bool,
    /// Whether it is a named group (which spans routes and methods).
    pub(crate) group: bool,
    /// The route's handler name, bound into path grants.
    pub(crate) handler: &'static str,
}

impl Scope {
    /// The scope of a request to a route: its named group, or its path.
    pub(crate) fn of(spec: &RouteSpec, view: &dyn RequestView, resource: &str) -> Self {
        let secure = resource.starts_with("https://");
        match spec.access.and_then(|a| a.scope) {
            Some(group) => Scope {
                id: format!("group:{group}"),
                path_prefix: "/".to_owned(),
                secure,
                group: true,
                handler: spec.handler,
            },
            None => {
                let path = view.path_and_query().split('?').next().unwrap_or("/");
                Scope {
                    id: format!("path:{path}"),
                    path_prefix: path.to_owned(),
                    secure,
                    group: false,
                    handler: spec.handler,
                }
            }
        }
    }

    /// Tokens the request carries: the `x402-entitlement` header, an `Authorization: Bearer`
    /// token of ours (other bearer tokens belong to the application and are left alone), and
    /// this scope's cookie.
    pub(crate) fn tokens_in(&self, view: &dyn RequestView) -> Vec<String> {
        let mut tokens = Vec::new();
        if let Some(token) = view.header(ENTITLEMENT_HEADER) {
            tokens.push(token.trim().to_owned());
        }
        if let Some(token) = view
            .header("authorization")
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| t.starts_with(TOKEN_PREFIX))
        {
            tokens.push(token.to_owned());
        }
        if let Some(token) = view
            .header("cookie")
            .and_then(|cookies| cookie_value(cookies, &cookie_name(&self.id)))
        {
            tokens.push(token.to_owned());
        }
        tokens.dedup();
        tokens
    }
}

/// A grant to issue once its payment settles.
#[derive(Debug, Clone)]
pub(crate) struct GrantPlan {
    claims: Claims,
    /// Initial value of its counter (uses or balance), if counted.
    counter: Option<u64>,
    pub(crate) lifetime: Duration,
    pub(crate) scope: Scope,
}

/// The price of one request as a counter amount.
fn counter_amount(amount: U256) -> Option<u64> {
    u64::try_from(amount).ok().filter(|a| *a <= MAX_COUNTER)
}

fn single_option<'r>(
    route: &'r PreparedRoute,
    network: &str,
    asset: &str,
) -> Option<&'r AcceptOption> {
    route
        .options
        .iter()
        .find(|o| !o.prepaid && o.network.caip2 == network && written_as(&o.asset.address, asset))
}

/// Whether `text` is `address` as written on the wire: EVM hex in any letter case (compared
/// with its remembered EIP-55 text, without allocating), Solana base58 exactly.
fn written_as(address: &ChainAddress, text: &str) -> bool {
    match address {
        ChainAddress::Evm(evm) => {
            x402_protocol::checksum::checksummed(evm).eq_ignore_ascii_case(text)
        }
        ChainAddress::Solana(_) => x402_protocol::verify::same_address(&address.to_string(), text),
    }
}

static EPHEMERAL_WARNED: AtomicBool = AtomicBool::new(false);

impl Gate {
    /// Redeems the first token that is good for this scope, drawing a use or the price from its
    /// counter. Fails with the most relevant token problem (402), or a store failure (503).
    pub(crate) async fn redeem(
        &self,
        tokens: &[String],
        scope: &Scope,
        method: &str,
        challenge: &Arc<Challenge>,
        summary: Option<&RequestSummary>,
    ) -> Result<Admission, Rejection> {
        let now = self.clock.now_unix();
        let route = challenge.route();
        let mut problem: Option<EntitlementError> = None;
        for token in tokens {
            // Shared with the keys' memory of verified tokens: a token seen before costs a
            // lookup, not a mac and a JSON parse.
            let claims = match self.entitlement_keys.verify_shared(token, now) {
                Ok(claims) => claims,
                Err(error) => {
                    problem.get_or_insert(error);
                    continue;
                }
            };
            if claims.scope != scope.id {
                problem.get_or_insert(EntitlementError::OtherScope(claims.scope.clone()));
                continue;
            }
            if !scope.group
                && (!claims.method.is_empty() && claims.method != method
                    || !claims.route.is_empty() && claims.route != scope.handler)
            {
                problem.get_or_insert(EntitlementError::OtherRoute(format!(
                    "{} {}",
                    claims.method,
                    if claims.route.is_empty() {
                        &claims.scope
                    } else {
                        &claims.route
                    }
                )));
                continue;
            }
            let Some(option) = single_option(route, &claims.network, &claims.asset) else {
                // The route no longer accepts what bought the grant.
                problem.get_or_insert(EntitlementError::OtherScope(claims.scope.clone()));
                continue;
            };
            // A grant covers requests up to the price it was bought at (a dynamic price, a
            // group of routes at several prices).
            let single_price = match claims.kind {
                GrantKind::Access => U256::from_str(&claims.amount).unwrap_or_default(),
                GrantKind::Prepaid => U256::from_str(&claims.price).unwrap_or_default(),
            };
            if option.amount > single_price {
                problem.get_or_insert(EntitlementError::Dearer {
                    paid: single_price.to_string(),
                    price: option.amount.to_string(),
                });
                continue;
            }
            let (draw, charged) = match claims.kind {
                GrantKind::Access => (
                    claims.counted.then_some(1),
                    U256::from_str(&claims.amount).unwrap_or_default(),
                ),
                GrantKind::Prepaid => match counter_amount(option.amount) {
                    Some(price) => (Some(price), option.amount),
                    None => {
                        problem.get_or_insert(EntitlementError::Exhausted);
                        continue;
                    }
                },
            };
            let (pending, remaining) = match draw {
                None => (
                    PendingKind::Nothing {
                        deliver: Vec::new(),
                    },
                    None,
                ),
                Some(amount) => match self
                    .entitlements
                    .take(&claims.id, amount)
                    .await
                    .map_err(store_rejection)?
                {
                    Take::Taken { remaining } => (
                        PendingKind::Drawn {
                            id: claims.id.clone(),
                            amount,
                            deliver: Vec::new(),
                        },
                        Some(remaining),
                    ),
                    Take::Insufficient { remaining } if claims.kind == GrantKind::Prepaid => {
                        problem.get_or_insert(EntitlementError::Insufficient {
                            remaining,
                            price: amount,
                        });
                        continue;
                    }
                    Take::Insufficient { .. } | Take::Missing => {
                        problem.get_or_insert(EntitlementError::Exhausted);
                        continue;
                    }
                },
            };
            let grant = Grant {
                id: claims.id.clone(),
                scope: claims.scope.clone(),
                transaction: claims.transaction.clone(),
                paid: U256::from_str(&claims.amount).unwrap_or_default(),
                expires_at: claims.expires_at,
                remaining,
            };
            let Ok(payer) = ChainAddress::from_str(&claims.payer) else {
                problem.get_or_insert(EntitlementError::Malformed);
                continue;
            };
            if let Some(summary) = summary {
                let redemption = Redemption::new(summary.clone(), payer.to_string(), grant.clone());
                if let Err(abort) = self.hooks.on_entitlement_redemption(&redemption).await {
                    // Refused: what was drawn for this request goes back to the grant.
                    if let PendingKind::Drawn { id, amount, .. } = &pending
                        && let Err(error) = self.entitlements.give_back(id, *amount).await
                    {
                        tracing::warn!(target: "x402::store", %error, %id, "could not give a draw back");
                    }
                    return Err(Rejection::from_abort(abort).with_payer(Some(payer)));
                }
            }
            let payment = PaymentInfo {
                payer,
                amount: charged,
                asset: option.asset.clone(),
                network: option.network.clone(),
                pay_to: option.pay_to,
                scheme: option.scheme.name(),
                version: if claims.version == 1 {
                    ProtocolVersion::V1
                } else {
                    ProtocolVersion::V2
                },
                access: match claims.kind {
                    GrantKind::Access => Access::Entitlement(grant),
                    GrantKind::Prepaid => Access::Prepaid(grant),
                },
                transaction: Some(claims.transaction.clone()),
                meter: None,
                resource: challenge.resource().to_owned(),
            };
            return Ok(Admission {
                payment,
                pending: Pending(pending),
            });
        }
        let problem = problem.unwrap_or(EntitlementError::Malformed);
        tracing::info!(target: "x402::entitlement", reason = %problem.reason(), %problem, "entitlement refused");
        Err(Rejection::new(problem.reason(), problem.to_string()))
    }

    /// What a verified payment for `option` buys beyond this request, if anything.
    pub(crate) fn plan_grant(
        &self,
        route: &PreparedRoute,
        option: &AcceptOption,
        scope: &Scope,
        verified: &VerifiedPayment,
        version: ProtocolVersion,
        method: &str,
    ) -> Option<GrantPlan> {
        let mut single_price = option.amount;
        let (kind, counter, lifetime) = if option.prepaid {
            let single = single_option(
                route,
                &option.network.caip2,
                &option.asset.address.to_string(),
            )?;
            single_price = single.amount;
            // Both fit a counter: checked when the route was prepared. The paying request draws
            // its own price from the balance.
            let balance =
                counter_amount(option.amount)?.saturating_sub(counter_amount(single.amount)?);
            let lifetime = route
                .access
                .and_then(|a| a.duration)
                .unwrap_or(DEFAULT_GRANT_LIFETIME);
            (GrantKind::Prepaid, Some(balance), lifetime)
        } else {
            let access = route.access?;
            // The paying request is the first use.
            let counter = access
                .uses
                .map(|uses| uses.saturating_sub(1).min(MAX_COUNTER));
            (
                GrantKind::Access,
                counter,
                access.duration.unwrap_or(DEFAULT_GRANT_LIFETIME),
            )
        };
        let mut claims = Claims::new(
            kind,
            scope.id.clone(),
            self.clock.now_unix().saturating_add(lifetime.as_secs()),
        );
        claims.counted = counter.is_some();
        claims.payer = verified.payer.to_string();
        claims.network = option.network.caip2.to_string();
        claims.asset = option.asset.address.to_string();
        claims.amount = option.amount.to_string();
        claims.price = single_price.to_string();
        claims.version = version.number();
        if !scope.group {
            claims.method = method.to_owned();
            claims.route = scope.handler.to_owned();
        }
        Some(GrantPlan {
            claims,
            counter,
            lifetime,
            scope: scope.clone(),
        })
    }

    /// Creates a grant's counter; done before settlement, so a store failure charges nothing.
    pub(crate) async fn open_grant(&self, plan: &GrantPlan) -> Result<(), Rejection> {
        match plan.counter {
            Some(value) => self
                .entitlements
                .create(&plan.claims.id, value, plan.lifetime + COUNTER_MARGIN)
                .await
                .map_err(store_rejection),
            None => Ok(()),
        }
    }

    /// The token of a grant whose payment settled in `transaction`.
    pub(crate) fn grant_token(&self, plan: &GrantPlan, transaction: &str) -> String {
        if self.ephemeral_keys && !EPHEMERAL_WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "x402::entitlement",
                "issuing entitlement tokens with a random per-process key: they will not survive a restart or work on other replicas; configure X402Builder::entitlement_keys"
            );
        }
        let mut claims = plan.claims.clone();
        claims.transaction = transaction.to_owned();
        self.entitlement_keys.sign(&claims)
    }

    /// Keeps a delivered grant's token for its payer, so that signing in gets it back (when
    /// sign-in-with-x is on). A store that cannot keep it costs the payer nothing now: the
    /// token is delivered all the same; only a later sign-in will find nothing.
    pub(crate) async fn remember_grant(&self, plan: &GrantPlan, token: &str) {
        if self.siwx.is_none() {
            return;
        }
        let scope = &plan.claims.scope;
        let payer = &plan.claims.payer;
        if let Err(error) = self
            .entitlements
            .remember_grant(scope, payer, token, plan.lifetime)
            .await
        {
            tracing::warn!(target: "x402::store", %error, %scope, %payer, "could not keep a grant for sign-in-with-x");
        }
    }

    /// The headers that deliver a grant's token: `x402-entitlement`, its scope, and a cookie
    /// that lasts `max_age`.
    pub(crate) fn token_headers(
        &self,
        token: String,
        scope: &Scope,
        max_age: Duration,
    ) -> Vec<(&'static str, String)> {
        let cookie = format!(
            "{}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            cookie_name(&scope.id),
            max_age.as_secs(),
            if scope.secure { "; Secure" } else { "" }
        );
        vec![
            (ENTITLEMENT_HEADER, token),
            (ENTITLEMENT_SCOPE_HEADER, scope.path_prefix.clone()),
            ("set-cookie", cookie),
        ]
    }
}
