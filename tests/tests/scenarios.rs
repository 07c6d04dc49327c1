//! The scenario table on every framework, over real loopback sockets.

use x402_tests::apps::{actix_app, axum_app, rocket_app};
use x402_tests::scenarios::{Launch, SCENARIOS, check, run, run_table};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_passes_every_scenario() {
    run_table("axum", axum_app::launch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_web_passes_every_scenario() {
    run_table("actix-web", actix_app::launch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocket_passes_every_scenario() {
    run_table("rocket", rocket_app::launch).await;
}

/// Beyond meeting each row's expectations, the frameworks must answer alike: same status, same
/// reason, same headers, same JSON body shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_framework_answers_alike() {
    let frameworks: [(&str, Launch); 3] = [
        ("axum", axum_app::launch),
        ("actix-web", actix_app::launch),
        ("rocket", rocket_app::launch),
    ];
    let mut differences = Vec::new();
    for scenario in SCENARIOS {
        let mut observations = Vec::new();
        for (name, launch) in frameworks {
            let observed = run(scenario, launch).await;
            check(scenario, &observed).unwrap_or_else(|problem| panic!("{name}: {problem}"));
            observations.push((name, observed.comparable()));
        }
        let (first, reference) = &observations[0];
        for (name, observed) in &observations[1..] {
            if observed != reference {
                differences.push(format!(
                    "{}: {name} {observed:?} vs {first} {reference:?}",
                    scenario.name
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}
