//! Allocator benchmark, after Mesos's `HierarchicalAllocator_BENCHMARK_Test`.
//!
//! Run with `cargo bench -p pando-core --bench allocator` (add `-- --quick`
//! for the smaller grids only, or `-- --only=10000x1000` for one size). It
//! prints one table per scenario:
//!
//! * **DeclineOffers**: every framework declines every offer with a long
//!   filter. We report the mean time of the cycles that still make offers
//!   (each offer is declined before the next cycle) and of a steady cycle
//!   once everything is filtered.
//! * **SuppressOffers**: the same grid with 90% of frameworks suppressed.
//! * **AddAndUpdateAgent**: time to add N agents, then to update each one
//!   (a dynamic reservation on free resources).
//! * **LaunchChurn**: frameworks accept one small task per offer, tasks end
//!   after one cycle and their resources are recovered and re-offered.
//!
//! Without `--bench` (as under `cargo test --all-targets`) it runs one tiny
//! grid as a smoke test, so CI checks that it works without paying for it.

use std::time::{Duration, Instant};

use pando_core::allocator::{AgentSpec, Allocator, Config, Decision, FrameworkSpec, Time, FOREVER};
use pando_resources::Resources;

const AGENT: &str = "cpus:24;mem:4096;disk:4096;ports:[31000-32000]";

fn cluster(agents: usize, frameworks: usize) -> Allocator {
    let mut allocator = Allocator::new(Config::default());
    let total = Resources::parse(AGENT).expect("benchmark agent resources parse");
    for i in 0..agents {
        allocator
            .add_agent(
                &format!("agent-{i:06}"),
                AgentSpec {
                    hostname: format!("host-{i}"),
                    total: total.clone(),
                    attributes: Vec::new(),
                },
            )
            .expect("fresh agent id");
    }
    for i in 0..frameworks {
        allocator
            .add_framework(
                &format!("framework-{i:05}"),
                FrameworkSpec {
                    roles: [format!("role{}", i % 10)].into_iter().collect(),
                    ..Default::default()
                },
            )
            .expect("fresh framework id");
    }
    allocator
}

fn offers(decisions: &[Decision]) -> Vec<u64> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Offer(o) => Some(o.id),
            _ => None,
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs declining cycles until a cycle makes no offer (or `max_cycles`),
/// returning (mean cycle ms, cycles, steady cycle ms).
fn decline_cycles(allocator: &mut Allocator, max_cycles: usize) -> (f64, usize, f64) {
    let mut now = Time(1);
    let mut spent = Duration::ZERO;
    let mut cycles = 0;
    loop {
        let start = Instant::now();
        let decisions = allocator.allocate(now);
        spent += start.elapsed();
        cycles += 1;
        let ids = offers(&decisions);
        if ids.is_empty() || cycles >= max_cycles {
            break;
        }
        for id in ids {
            allocator
                .decline(id, Some(FOREVER), now)
                .expect("outstanding offer");
        }
        now = Time(now.0 + 1_000_000_000);
    }
    let start = Instant::now();
    allocator.allocate(now);
    let steady = start.elapsed();
    (ms(spent) / cycles as f64, cycles, ms(steady))
}

fn decline_offers(grid: &[(usize, usize)]) {
    println!(
        "\n### DeclineOffers (every framework declines every offer, refuse_seconds = forever)\n"
    );
    println!("| agents | frameworks | cycles with offers (measured) | mean cycle (ms) | next cycle, nothing new declined (ms) |");
    println!("|---:|---:|---:|---:|---:|");
    let mut verdicts = Vec::new();
    for &(agents, frameworks) in grid {
        let mut allocator = cluster(agents, frameworks);
        let (mean, cycles, steady) = decline_cycles(&mut allocator, 20);
        println!("| {agents} | {frameworks} | {cycles} | {mean:.1} | {steady:.3} |");
        // The allocator issue's targets: 100 ms at 10k x 1k, 1 s at 50k x 6k.
        let target = match (agents, frameworks) {
            (10_000, 1_000) => Some(100.0),
            (50_000, 6_000) => Some(1_000.0),
            _ => None,
        };
        if let Some(target) = target {
            let verdict = if mean <= target { "met" } else { "MISSED" };
            verdicts.push(format!(
                "target {agents} x {frameworks}: mean cycle {mean:.1} ms vs <= {target:.0} ms: {verdict}"
            ));
        }
    }
    for v in verdicts {
        println!("\n{v}");
    }
}

fn suppress_offers(grid: &[(usize, usize)]) {
    println!("\n### SuppressOffers (90% of frameworks suppressed, the rest decline)\n");
    println!("| agents | frameworks | cycles with offers (measured) | mean cycle (ms) | next cycle, nothing new declined (ms) |");
    println!("|---:|---:|---:|---:|---:|");
    for &(agents, frameworks) in grid {
        let mut allocator = cluster(agents, frameworks);
        for i in 0..frameworks {
            if i % 10 != 0 {
                allocator
                    .suppress(&format!("framework-{i:05}"), &[])
                    .expect("known framework");
            }
        }
        let (mean, cycles, steady) = decline_cycles(&mut allocator, 20);
        println!("| {agents} | {frameworks} | {cycles} | {mean:.1} | {steady:.3} |");
    }
}

fn add_and_update(sizes: &[usize]) {
    println!("\n### AddAndUpdateAgent\n");
    println!("| agents | add all (ms) | update all (ms) |");
    println!("|---:|---:|---:|");
    let from = Resources::parse("cpus:1;mem:128").expect("parses");
    let to = Resources::parse("cpus(eng):1;mem(eng):128").expect("parses");
    for &n in sizes {
        let start = Instant::now();
        let mut allocator = cluster(n, 0);
        let add = start.elapsed();
        let start = Instant::now();
        for i in 0..n {
            allocator
                .convert_free(&format!("agent-{i:06}"), &from, &to)
                .expect("free resources");
        }
        let update = start.elapsed();
        println!("| {n} | {:.1} | {:.1} |", ms(add), ms(update));
    }
}

fn launch_churn(grid: &[(usize, usize)]) {
    println!("\n### LaunchChurn (one cpus:1;mem:128 task per offer, tasks end after one cycle)\n");
    println!("| agents | frameworks | cycles | offers | offers/s (allocator time) | cycles until every framework served |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let task = Resources::parse("cpus:1;mem:128").expect("parses");
    for &(agents, frameworks) in grid {
        let mut allocator = cluster(agents, frameworks);
        let mut now = Time(1);
        let mut served = std::collections::BTreeSet::new();
        let mut all_served_at = None;
        let mut running: Vec<(String, String)> = Vec::new();
        let mut offers_made = 0usize;
        let mut spent = Duration::ZERO;
        let cycles = 20;
        for cycle in 1..=cycles {
            for (fw, agent) in running.drain(..) {
                allocator.recover(&fw, &agent, &task).expect("known agent");
            }
            let start = Instant::now();
            let decisions = allocator.allocate(now);
            for d in decisions {
                if let Decision::Offer(o) = d {
                    offers_made += 1;
                    allocator
                        .accept(o.id, &task, Some(Duration::ZERO), now)
                        .expect("task fits the offer");
                    served.insert(o.framework.clone());
                    running.push((o.framework, o.agent));
                }
            }
            spent += start.elapsed();
            if all_served_at.is_none() && served.len() == frameworks {
                all_served_at = Some(cycle);
            }
            now = Time(now.0 + 1_000_000_000);
        }
        let rate = offers_made as f64 / spent.as_secs_f64().max(1e-9);
        let served = all_served_at.map_or("never".to_string(), |c| c.to_string());
        println!("| {agents} | {frameworks} | {cycles} | {offers_made} | {rate:.0} | {served} |");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    let only = args
        .iter()
        .find_map(|a| a.strip_prefix("--only="))
        .and_then(|g| {
            let (a, f) = g.split_once('x')?;
            Some((a.parse().ok()?, f.parse().ok()?))
        });
    let grid: Vec<(usize, usize)> = if let Some(one) = only {
        vec![one]
    } else if !bench {
        vec![(50, 10)]
    } else if quick {
        vec![(1_000, 100), (5_000, 500)]
    } else {
        vec![
            (1_000, 100),
            (5_000, 500),
            (10_000, 1_000),
            (20_000, 2_000),
            (50_000, 6_000),
        ]
    };
    println!(
        "Pando allocator benchmark ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    decline_offers(&grid);
    suppress_offers(&grid);
    let sizes: Vec<usize> = grid.iter().map(|g| g.0).collect();
    add_and_update(&sizes);
    launch_churn(&grid);
}
