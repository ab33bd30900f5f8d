//! Time of `microframework new user-service` end to end (templates parsed, proto rendered and
//! compiled by protox, model, plan, render, atomic write), and of its in-memory part alone.
//! Run with `cargo bench --bench new_project`; criterion prints the median of each.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use microframework::{
    cli::{NewArgs, ServiceType},
    new::{self, render_new_project},
    report::Verbosity,
    templates::Templates,
};

fn new_project(c: &mut Criterion) {
    c.bench_function("new user-service (end to end, to disk)", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("temp dir"),
            |dir| {
                let args = NewArgs {
                    name: "user-service".into(),
                    service_type: ServiceType::Grpc,
                    output: Some(dir.path().join("user-service")),
                    protos: Vec::new(),
                    includes: Vec::new(),
                };
                new::run(&args, Verbosity::Quiet).expect("generates");
                dir
            },
            BatchSize::PerIteration,
        )
    });
    c.bench_function("render user-service in memory", |b| {
        b.iter(|| {
            let templates = Templates::embedded().expect("templates parse");
            render_new_project("user-service", &templates).expect("renders")
        })
    });
}

criterion_group!(benches, new_project);
criterion_main!(benches);
