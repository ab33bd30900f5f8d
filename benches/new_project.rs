//! Time of `microframework new user-service` end to end (templates parsed, proto rendered and
//! compiled by protox, model, plan, render, atomic write), and of its in-memory part alone.
//! Run with `cargo bench --bench new_project`; criterion prints the median of each.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use microframework::{
    cli::{FeatureArgs, NewArgs, ServiceType},
    commands::{
        new,
        pipeline::{render_new_project, render_proto_project},
    },
    input::ProtoInput,
    model::features::Features,
    plan::templates::Templates,
    report::Verbosity,
};

/// A proto with `services` services of 10 unary methods each, with their messages.
fn synthetic_proto(services: usize) -> String {
    let mut proto = String::from("syntax = \"proto3\";\n\npackage bench.v1;\n");
    for s in 0..services {
        proto.push_str(&format!("\nservice Service{s} {{\n"));
        for m in 0..10 {
            proto.push_str(&format!(
                "  rpc Call{m}(S{s}M{m}Request) returns (S{s}M{m}Response);\n"
            ));
        }
        proto.push_str("}\n");
        for m in 0..10 {
            proto.push_str(&format!(
                "\nmessage S{s}M{m}Request {{\n  string id = 1;\n  int64 count = 2;\n}}\n\nmessage S{s}M{m}Response {{\n  string id = 1;\n  repeated string items = 2;\n}}\n"
            ));
        }
    }
    proto
}

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
                    spec: None,
                    templates: None,
                    dry_run: false,
                    features: FeatureArgs::default(),
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
            render_new_project("user-service", &Features::default(), &templates).expect("renders")
        })
    });
}

/// Render time (protox parse, model, plan, render; no disk) against the size of the proto.
fn proto_size(c: &mut Criterion) {
    let templates = Templates::embedded().expect("templates parse");
    let mut group = c.benchmark_group("render --proto by services (10 methods each)");
    for services in [1, 10, 100] {
        let mut input = ProtoInput::default();
        input
            .memory
            .insert("bench/v1/bench.proto", synthetic_proto(services));
        input.roots.push("bench/v1/bench.proto".into());
        group.bench_function(services.to_string(), |b| {
            b.iter(|| {
                render_proto_project("bench", &input, &Features::default(), &templates)
                    .expect("renders")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, new_project, proto_size);
criterion_main!(benches);
