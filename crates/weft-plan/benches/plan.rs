//! The cost of planning 10,000-stage graphs: a chain, and a wide fan of independent stages.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use weft_plan::{Plan, StageNode};

fn stages(count: usize, chained: bool) -> Vec<StageNode> {
    (0..count)
        .map(|at| StageNode {
            id: format!("s{at}"),
            job: "std.echo".to_owned(),
            fan_out: false,
            reads: Vec::new(),
            needs: if chained && at > 0 {
                vec![format!("s{}", at - 1)]
            } else {
                Vec::new()
            },
        })
        .collect()
}

fn planning(c: &mut Criterion) {
    let chain = stages(10_000, true);
    let wide = stages(10_000, false);

    c.bench_function("plan a 10,000-stage chain", |b| {
        b.iter(|| Plan::build(black_box(chain.clone())).expect("a chain has no cycle"));
    });
    c.bench_function("plan 10,000 independent stages", |b| {
        b.iter(|| Plan::build(black_box(wide.clone())).expect("no cycle"));
    });
}

criterion_group!(benches, planning);
criterion_main!(benches);
