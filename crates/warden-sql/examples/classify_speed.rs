//! How long classifying a statement takes: every simple-protocol query through the gateway pays
//! this. Run with `cargo run --release -p warden-sql --example classify_speed`.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// pgbench's select-only transaction.
const POINT_SELECT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = 123";

/// A reporting query of the size applications send.
const JOIN: &str = "SELECT o.id, o.created_at, c.name, c.email, sum(i.qty * i.price) AS total
  FROM public.orders o
  JOIN public.customers c ON c.id = o.customer_id
  JOIN public.order_items i ON i.order_id = o.id
  LEFT JOIN shipping.shipments s ON s.order_id = o.id
 WHERE o.created_at >= now() - interval '7 days'
   AND c.country = 'NL'
   AND o.status IN ('paid', 'shipped')
 GROUP BY o.id, o.created_at, c.name, c.email
 ORDER BY total DESC LIMIT 50";

/// Runs `sql` through the classifier for about `budget` and returns the mean time per call.
fn measure(sql: &str, budget: Duration) -> Duration {
    // Warm up caches and the allocator first.
    for _ in 0..1_000 {
        black_box(warden_sql::classify(black_box(sql)));
    }
    let mut calls = 0u32;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..1_000 {
            black_box(warden_sql::classify(black_box(sql)));
        }
        calls += 1_000;
    }
    start.elapsed() / calls
}

fn main() {
    let budget = Duration::from_secs(2);
    for (name, sql) in [("point select", POINT_SELECT), ("10-line join", JOIN)] {
        let per = measure(sql, budget);
        println!(
            "{name:>13}: {:>7} ns/statement ({:.0} statements/s on one core)",
            per.as_nanos(),
            1e9 / per.as_nanos().max(1) as f64
        );
    }
}
