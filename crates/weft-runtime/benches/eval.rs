//! The cost of evaluating a typical `with` for one fan-out item.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use weft_runtime::StatusFlags;
use weft_runtime::eval::{Scope, Template, shared_environment};

fn with_per_item(c: &mut Criterion) {
    let inputs = json!({"dir": "workflows/data/books", "limit": 5});
    let scope = Scope::new(
        &inputs,
        "bench",
        "bench",
        std::iter::empty::<(&str, &weft_runtime::StageRecord)>(),
        StatusFlags::default(),
    );
    let with = json!({
        "path": "${{ inputs.dir }}/${{ item.name }}",
        "index": "${{ index }}",
        "limit": "${{ inputs.limit }}",
        "mode": "fast"
    });
    let template = Template::compile(shared_environment(), &with).expect("the template compiles");
    let item = json!({"name": "lighthouse.txt", "size": 1804});

    c.bench_function("render a typical `with` for one item", |b| {
        b.iter(|| {
            template
                .render(&scope, Some((black_box(&item), 7)))
                .expect("it renders")
        });
    });

    let only_item = Template::compile(shared_environment(), &json!({"value": "${{ item }}"}))
        .expect("the template compiles");
    c.bench_function("render `{value: ${{ item }}}` for one item", |b| {
        b.iter(|| {
            only_item
                .render(&scope, Some((black_box(&item), 7)))
                .expect("it renders")
        });
    });
}

criterion_group!(benches, with_per_item);
criterion_main!(benches);
