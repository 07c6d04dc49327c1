//! Cross-crate test support: the scenario table every framework integration must pass, the app
//! it runs against on each framework, a facilitator that misbehaves on purpose, and a client
//! that signs payments (or gets them wrong on purpose).

pub mod apps;
pub mod client;
pub mod facilitator;
pub mod scenarios;
pub mod solana;
