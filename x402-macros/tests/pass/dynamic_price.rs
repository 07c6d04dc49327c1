//! `price = path::to::function`: the spec holds the function, which prices each request.
#![deny(warnings)]

#[path = "../support/mod.rs"]
mod support;

use support::{Payment, spec_of};
use x402_runtime::{Price, PriceSpec, RequestView, paid};

mod pricing {
    use x402_runtime::{Price, PriceError, RequestView};

    pub fn by_size(request: &dyn RequestView) -> Result<Price, PriceError> {
        if request.path_and_query().contains("size=large") {
            Price::usd("0.05")
        } else {
            Price::usd("0.01")
        }
    }
}

#[paid(price = pricing::by_size, network = ["base", "eip155:31337"], description = "Resized image")]
async fn image(payment: Payment) -> Vec<u8> {
    let _ = payment;
    vec![]
}

struct Get(&'static str);

impl RequestView for Get {
    fn method(&self) -> &str {
        "GET"
    }
    fn path_and_query(&self) -> &str {
        self.0
    }
    fn header(&self, _: &str) -> Option<&str> {
        None
    }
}

fn main() {
    let spec = spec_of(image);
    let PriceSpec::Dynamic(price) = spec.price else {
        panic!("expected a dynamic price");
    };
    assert_eq!(price(&Get("/image?size=large")), Price::usd("0.05"));
    assert_eq!(price(&Get("/image")), Price::usd("0.01"));
    assert_eq!(spec.networks, ["base", "eip155:31337"]);
    assert_eq!(spec.description, "Resized image");
}
