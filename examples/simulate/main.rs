//! The quality report of tower-lb's balancing policies: simulations that run each policy's
//! real pick code (through [`tower_lb::Picker`]) on a virtual clock, with fixed seeds.
//!
//! ```text
//! cargo run --release --example simulate            # full report, well under a minute
//! SIM_QUICK=1 cargo run --release --example simulate   # reduced sizes (or pass --quick)
//! cargo test --example simulate                     # the claims below, asserted
//! ```
//!
//! The report (markdown, on stdout) has eight sections:
//!
//! 1. **Balls into bins** — n held requests into n endpoints: the maximum load of uniform
//!    random, round robin, p2c and least loaded, beside `ln n / ln ln n` and
//!    `ln ln n / ln 2`.
//! 2. **Hash movement** — the share of keys that change endpoint when one of N endpoints
//!    leaves or joins: modulo, ring, Maglev (two table sizes), ring and Maglev with bounded
//!    loads.
//! 3. **Ring and Maglev balance** — each endpoint's share of keys against its weight's share.
//! 4. **Bounded loads under Zipf keys** — the most calls any endpoint holds, with and without
//!    bounded loads, against `⌈(1 + ε) × average⌉`.
//! 5. **Tail latency with heterogeneous backends** — a discrete-event simulation after
//!    tower's 2018 balancer demo: latency percentiles per policy.
//! 6. **Gray failures** — a frozen endpoint and a cold start with one slow endpoint.
//! 7. **Subsetting** — many clients each connecting to a subset of a large fleet: how evenly
//!    the fleet is covered, and what one server leaving moves.
//! 8. **Spread at large N** — calls served per endpoint among thousands of identical ones.
//!
//! SVG plots go to `$CARGO_TARGET_DIR/simulate/` (`target/simulate/` by default); their paths
//! are printed at the end. Each module holds one section and the tests of its claims.

mod balance;
mod bins;
mod bounded;
mod fixture;
mod gray;
mod latency;
mod movement;
mod plot;
mod spread;
mod subsets;
mod table;
mod zipf;

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use plot::{Axis, Line, Panel, Reference};

/// Problem sizes: the full report, or a reduced one for a quick look.
struct Scale {
    name: &'static str,
    bins_sizes: &'static [usize],
    bins_seeds: &'static [u64],
    movement_sizes: &'static [usize],
    movement_keys: usize,
    movement_trials: usize,
    balance_keys: usize,
    bounded_arrivals: usize,
    latency_calls: usize,
    subset_clients: u64,
    subset_servers: usize,
    spread_sizes: &'static [usize],
}

const FULL: Scale = Scale {
    name: "full",
    bins_sizes: &[1_000, 10_000, 100_000],
    bins_seeds: &[1, 2, 3, 4, 5],
    movement_sizes: &[10, 100, 1_000],
    movement_keys: 1_000_000,
    movement_trials: 3,
    balance_keys: 1_000_000,
    bounded_arrivals: 200_000,
    latency_calls: 100_000,
    subset_clients: 1_000,
    subset_servers: 10_000,
    spread_sizes: &[100, 1_000, 10_000],
};

const QUICK: Scale = Scale {
    name: "quick",
    bins_sizes: &[1_000, 10_000],
    bins_seeds: &[1],
    movement_sizes: &[10, 100],
    movement_keys: 100_000,
    movement_trials: 1,
    balance_keys: 200_000,
    bounded_arrivals: 20_000,
    latency_calls: 20_000,
    subset_clients: 100,
    subset_servers: 1_000,
    spread_sizes: &[100, 1_000],
};

fn main() -> Result<(), Box<dyn Error>> {
    let quick = std::env::var("SIM_QUICK").is_ok_and(|v| v == "1")
        || std::env::args().skip(1).any(|a| a == "--quick");
    let scale = if quick { &QUICK } else { &FULL };
    let out_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("simulate");
    let started = Instant::now();
    // SIM_ONLY=spread: section 8 alone.
    if std::env::var("SIM_ONLY").is_ok_and(|v| v == "spread") {
        println!("{}", spread::report(scale.spread_sizes, 100)?);
        return Ok(());
    }
    // SIM_ONLY=gray: section 6 alone.
    if std::env::var("SIM_ONLY").is_ok_and(|v| v == "gray") {
        println!("{}", gray::report()?);
        return Ok(());
    }
    println!("# tower-lb policy simulation ({} run)\n", scale.name);
    println!(
        "Every number below comes from the policies' own pick code (`tower_lb::Picker`) on a \
         virtual clock with fixed seeds: the same command prints the same report.\n"
    );

    println!("{}", bins::report(scale.bins_sizes, scale.bins_seeds)?);
    println!(
        "{}",
        movement::report(
            scale.movement_sizes,
            scale.movement_keys,
            scale.movement_trials
        )?
    );
    let balance = balance::report(100, scale.balance_keys)?;
    println!("{}", balance.text);
    let bounded = bounded::report(&bounded::Workload {
        endpoints: 20,
        keys: 10_000,
        zipf_s: 1.1,
        window: 1_000,
        arrivals: scale.bounded_arrivals,
        epsilon: 0.25,
        seed: 7,
    })?;
    println!("{}", bounded.text);
    let latency = latency::report(&latency::Setup {
        concurrency: 50,
        calls: scale.latency_calls,
        seed: 3,
    })?;
    println!("{}", latency.text);

    println!("{}", gray::report()?);
    println!(
        "{}",
        subsets::report(scale.subset_clients, scale.subset_servers, 50)
    );
    println!("{}", spread::report(scale.spread_sizes, 100)?);

    println!("## Plots\n");
    for path in [
        plot::write(&out_dir, "balance.svg", &balance_plot(&balance))?,
        plot::write(&out_dir, "bounded_load.svg", &bounded_plot(&bounded))?,
        plot::write(&out_dir, "latency_cdf.svg", &latency_cdf_plot(&latency))?,
        plot::write(&out_dir, "latency_tail.svg", &latency_tail_plot(&latency))?,
    ] {
        println!("- `{}`", path.display());
    }
    // Wall time goes to stderr so the report itself stays the same from run to run.
    eprintln!("simulate: done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Section 3: each endpoint's share of the hash space per layout.
fn balance_plot(balance: &balance::Balance) -> String {
    let panels: Vec<Panel<'_>> = balance
        .grid_ratios
        .iter()
        .map(|(layout, ratios)| {
            let (lo, hi) = balance::min_max(ratios);
            Panel {
                title: format!("{}: min {lo:.3}, max {hi:.3}", layout.name()),
                values: ratios,
            }
        })
        .collect();
    plot::bar_panels(
        "Share of the hash space per endpoint (N = 100, weight 1)",
        "share / expected share",
        &panels,
        Some(&Reference {
            value: 1.0,
            label: "ideal",
        }),
    )
}

/// Section 4: the most calls each endpoint held, per policy, against the bound.
fn bounded_plot(bounded: &bounded::Bounded) -> String {
    let peaks: Vec<(String, Vec<f64>)> = bounded
        .outcomes
        .iter()
        .map(|(hashing, o)| {
            let values = o.peak_in_flight.iter().map(|&v| f64::from(v)).collect();
            (hashing.name().to_string(), values)
        })
        .collect();
    let panels: Vec<Panel<'_>> = peaks
        .iter()
        .map(|(name, values)| Panel {
            title: name.clone(),
            values,
        })
        .collect();
    let label = format!("bound {}", bounded.bound);
    plot::bar_panels(
        "Most calls in flight per endpoint, Zipf keys (s = 1.1), 1,000 in flight",
        "peak calls in flight",
        &panels,
        Some(&Reference {
            value: f64::from(bounded.bound),
            label: &label,
        }),
    )
}

/// Section 5: latency CDF per policy, log-x.
fn latency_cdf_plot(latency: &latency::Latency) -> String {
    let lines: Vec<Line> = latency
        .runs
        .iter()
        .map(|(balancing, run)| {
            // 1,000 evenly spaced quantiles are plenty for the eye.
            let points = (1..=1_000)
                .map(|j| {
                    let q = f64::from(j) / 1_000.0;
                    (run.quantile_ms(q), q)
                })
                .collect();
            Line {
                name: balancing.name().into(),
                points,
            }
        })
        .collect();
    plot::line_chart(
        "Latency CDF per policy (10 heterogeneous endpoints, 50 callers)",
        &Axis {
            label: "latency (ms, log)",
            log: true,
        },
        &Axis {
            label: "fraction of calls at or below",
            log: false,
        },
        &lines,
    )
}

/// Section 5: the tail, 1 − CDF on log-log axes, where p99 and p99.9 differences show.
fn latency_tail_plot(latency: &latency::Latency) -> String {
    let lines: Vec<Line> = latency
        .runs
        .iter()
        .map(|(balancing, run)| {
            let n = run.latencies_ns.len();
            // Ranks spaced evenly in log(1 − q), from the median down to the single slowest call.
            let points = (0..=400)
                .map(|j| {
                    let beyond = 0.5 * (1.0 / n.max(1) as f64 / 0.5).powf(f64::from(j) / 400.0);
                    (run.quantile_ms(1.0 - beyond), beyond)
                })
                .collect();
            Line {
                name: balancing.name().into(),
                points,
            }
        })
        .collect();
    plot::line_chart(
        "Latency tail per policy: share of calls slower than x",
        &Axis {
            label: "latency (ms, log)",
            log: true,
        },
        &Axis {
            label: "1 − CDF (log)",
            log: true,
        },
        &lines,
    )
}
