//! Collects every mistake instead of stopping at the first (serde's `Ctxt` habit).

use std::fmt::Display;

use proc_macro2::TokenStream;
use quote::ToTokens;

/// The mistakes found so far, merged with [`syn::Error::combine`].
#[derive(Default)]
#[must_use = "errors must be reported with `into_compile_errors` or checked"]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Records an error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Records an error on the given tokens.
    pub(crate) fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// How many mistakes were recorded.
    pub(crate) fn count(&self) -> usize {
        self.combined
            .as_ref()
            .map_or(0, |e| e.clone().into_iter().count())
    }

    /// Whether no mistake was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.combined.is_none()
    }

    /// One `compile_error!` per recorded mistake.
    pub(crate) fn into_compile_errors(self) -> TokenStream {
        self.combined
            .map(|e| e.into_compile_error())
            .unwrap_or_default()
    }

    /// The messages, in the order they were recorded (for tests).
    #[cfg(test)]
    pub(crate) fn messages(&self) -> Vec<String> {
        self.combined
            .iter()
            .flat_map(|e| e.clone().into_iter().map(|e| e.to_string()))
            .collect()
    }
}
