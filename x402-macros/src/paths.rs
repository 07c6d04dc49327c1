//! Every path the expansion names, in one place (Rocket's `exports.rs` habit).
//!
//! All of them go through the runtime's hidden `__private` module, so the runtime can move
//! things around without breaking the macro, and `crate = "…"` only has to change the root.
//! The runtime's `src/__private.rs` lists the matching re-exports.

use proc_macro2::TokenStream;
use quote::quote;

/// Paths under `<crate>::__private`.
pub(crate) struct Paths {
    private: TokenStream,
}

impl Paths {
    /// Paths under `#krate::__private` (`::x402_runtime` unless `crate = "…"` says otherwise).
    pub(crate) fn new(krate: &syn::Path) -> Self {
        Paths {
            private: quote!(#krate::__private),
        }
    }

    fn item(&self, name: TokenStream) -> TokenStream {
        let private = &self.private;
        quote!(#private::#name)
    }

    /// The trait the hidden tag type implements.
    pub(crate) fn paid_route(&self) -> TokenStream {
        self.item(quote!(PaidRoute))
    }

    /// The link-time route registration (`inventory`, re-exported).
    pub(crate) fn inventory(&self) -> TokenStream {
        self.item(quote!(inventory))
    }

    /// One entry of the route registry.
    pub(crate) fn registered_route(&self) -> TokenStream {
        self.item(quote!(RegisteredRoute))
    }

    /// The trait a framework's `Payment` implements to settle before the handler.
    pub(crate) fn settle_first(&self) -> TokenStream {
        self.item(quote!(SettleFirst))
    }

    /// `Result`, immune to a user's own `Result`.
    pub(crate) fn result(&self) -> TokenStream {
        self.item(quote!(Result))
    }

    /// The route description, built with its `const fn` builder methods.
    pub(crate) fn route_spec(&self) -> TokenStream {
        self.item(quote!(RouteSpec))
    }

    /// `TransferMethod::Eip3009` / `TransferMethod::Permit2`.
    pub(crate) fn transfer_method(&self) -> TokenStream {
        self.item(quote!(TransferMethod))
    }

    /// `SettleMode::After` / `SettleMode::Before`.
    pub(crate) fn settle_mode(&self) -> TokenStream {
        self.item(quote!(SettleMode))
    }

    /// The protocol generations (`protocol = "v1" | "v2"`).
    pub(crate) fn protocol_version(&self) -> TokenStream {
        self.item(quote!(ProtocolVersion))
    }

    /// The entitlement settings (`access`, `uses`, `scope`).
    pub(crate) fn access_spec(&self) -> TokenStream {
        self.item(quote!(AccessSpec))
    }

    /// `core::time::Duration`.
    pub(crate) fn duration(&self) -> TokenStream {
        self.item(quote!(Duration))
    }

    /// A literal `bazaar(…)` declaration, built into a `BazaarExtension` at run time.
    pub(crate) fn bazaar_literal(&self) -> TokenStream {
        self.item(quote!(BazaarLiteral))
    }

    /// The type a route's discovery function returns.
    pub(crate) fn bazaar_extension(&self) -> TokenStream {
        self.item(quote!(BazaarExtension))
    }

    /// `Option::Some`, immune to a user's own `Some`.
    pub(crate) fn some(&self) -> TokenStream {
        self.item(quote!(Some))
    }

    /// `Option::None`.
    pub(crate) fn none(&self) -> TokenStream {
        self.item(quote!(None))
    }

    /// The derives put on the tag type, so that an integration's `Payment<T>` deriving them
    /// (with their usual `T: Trait` bounds) still implements them. Only the ones an extractor
    /// plausibly derives: each costs code per handler.
    pub(crate) fn tag_derives(&self) -> Vec<TokenStream> {
        [quote!(Clone), quote!(Copy), quote!(Debug)]
            .into_iter()
            .map(|name| self.item(name))
            .collect()
    }
}
