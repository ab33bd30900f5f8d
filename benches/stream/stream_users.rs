//! Copied into a generated user-service by benches/stream/run: creates BENCH_RECORDS users in
//! the in-memory store, then streams them all through the handler BENCH_ROUNDS times.

use std::time::Instant;

use tokio_stream::StreamExt;
use tonic::Request;
use user_service::proto::user::v1 as pb;
use user_service::proto::user::v1::user_service_server::UserService;
use user_service::services::user_service::UserServiceHandler;
use user_service::store::user::{Fields, InMemoryStore, Store};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: benches/stream/run"]
async fn stream_users() {
    let records = setting("BENCH_RECORDS", 100_000);
    let rounds = setting("BENCH_ROUNDS", 5);
    let store = InMemoryStore::with_max_records(records);
    let started = Instant::now();
    for i in 0..records {
        let fields = Fields {
            name: format!("user {i}"),
            email: format!("user{i}@example.com"),
        };
        store.create(fields).await.expect("created");
    }
    println!(
        "create {records}: {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let handler = UserServiceHandler::new(store);
    let mut times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let request = Request::new(pb::StreamUsersRequest {
            filter: String::new(),
        });
        let mut stream = handler
            .stream_users(request)
            .await
            .expect("streaming")
            .into_inner();
        let mut streamed = 0;
        while let Some(user) = stream.next().await {
            user.expect("a user");
            streamed += 1;
        }
        assert_eq!(streamed, records);
        let millis = started.elapsed().as_secs_f64() * 1e3;
        println!("stream {records}: {millis:.1} ms");
        times.push(millis);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "median stream of {records}: {:.1} ms",
        times[times.len() / 2]
    );
}
