//! A hand-written tonic server of `user.v1.UserService` with what a minimal service needs and
//! nothing else: `GetUser` looks the user up in memory (one user, seeded from `SEED_USER_ID`),
//! the rest answer UNIMPLEMENTED. No auth, metrics, logging, limits or panic guard: the
//! baseline of benches/load/run. With the `postgres` (or `sqlite`) feature and `DATABASE_URL`
//! set, `GetUser` and `CreateUser` run the generated store's queries over a pool like its own.

use std::{collections::HashMap, pin::Pin, sync::RwLock};

use tonic::{transport::Server, Request, Response, Status};

mod pb {
    tonic::include_proto!("user.v1");
}

use pb::user_service_server::{UserService, UserServiceServer};

struct Minimal {
    users: RwLock<HashMap<String, pb::User>>,
    #[cfg(any(feature = "postgres", feature = "sqlite"))]
    pool: Option<Pool>,
}

#[cfg(all(feature = "postgres", feature = "sqlite"))]
compile_error!("build with one database feature: postgres or sqlite");
#[cfg(feature = "postgres")]
type Pool = sqlx::PgPool;
#[cfg(feature = "sqlite")]
type Pool = sqlx::SqlitePool;

/// The generated store's INSERT: PostgreSQL fills in the times, SQLite is given them (`$4`).
#[cfg(feature = "postgres")]
const INSERT: &str = "INSERT INTO users (id, name, email) VALUES ($1, $2, $3) \
    RETURNING sequence, id, name, email, create_time, update_time";
#[cfg(feature = "sqlite")]
const INSERT: &str = "INSERT INTO users (id, name, email, create_time, update_time) \
    VALUES ($1, $2, $3, $4, $4) RETURNING sequence, id, name, email, create_time, update_time";

#[cfg(any(feature = "postgres", feature = "sqlite"))]
#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    name: String,
    email: String,
    create_time: time::OffsetDateTime,
    update_time: time::OffsetDateTime,
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
fn timestamp(time: time::OffsetDateTime) -> prost_types::Timestamp {
    let nanos = time.unix_timestamp_nanos();
    prost_types::Timestamp {
        seconds: nanos.div_euclid(1_000_000_000) as i64,
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
impl From<Row> for pb::User {
    fn from(row: Row) -> Self {
        Self {
            id: row.id,
            name: row.name,
            email: row.email,
            create_time: Some(timestamp(row.create_time)),
            update_time: Some(timestamp(row.update_time)),
        }
    }
}

const CREATED: prost_types::Timestamp = prost_types::Timestamp {
    seconds: 1_700_000_000,
    nanos: 0,
};

type UserStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::User, Status>> + Send>>;

#[tonic::async_trait]
impl UserService for Minimal {
    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let id = request.into_inner().id;
        #[cfg(any(feature = "postgres", feature = "sqlite"))]
        if let Some(pool) = &self.pool {
            let row: Option<Row> = sqlx::query_as(
                "SELECT sequence, id, name, email, create_time, update_time FROM users WHERE id = $1",
            )
            .bind(&id)
            .fetch_optional(pool)
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
            let user = row.ok_or_else(|| Status::not_found(id))?.into();
            return Ok(Response::new(pb::GetUserResponse { user: Some(user) }));
        }
        let users = self
            .users
            .read()
            .map_err(|_| Status::internal("poisoned"))?;
        let user = users
            .get(&id)
            .cloned()
            .ok_or_else(|| Status::not_found(id))?;
        Ok(Response::new(pb::GetUserResponse { user: Some(user) }))
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        #[cfg(any(feature = "postgres", feature = "sqlite"))]
        if let Some(pool) = &self.pool {
            let request = request.into_inner();
            let insert = sqlx::query_as(INSERT)
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(&request.name)
                .bind(&request.email);
            #[cfg(feature = "sqlite")]
            let insert = insert.bind(time::OffsetDateTime::now_utc());
            let row: Row = insert
            .fetch_one(pool)
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
            return Ok(Response::new(pb::CreateUserResponse {
                user: Some(row.into()),
            }));
        }
        let _ = request;
        Err(Status::unimplemented("create"))
    }

    async fn update_user(
        &self,
        _: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        Err(Status::unimplemented("update"))
    }

    async fn delete_user(
        &self,
        _: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        Err(Status::unimplemented("delete"))
    }

    async fn list_users(
        &self,
        _: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        Err(Status::unimplemented("list"))
    }

    type StreamUsersStream = UserStream;

    async fn stream_users(
        &self,
        _: Request<pb::StreamUsersRequest>,
    ) -> Result<Response<UserStream>, Status> {
        Err(Status::unimplemented("stream"))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = std::env::var("GRPC_PORT").unwrap_or_else(|_| "50061".to_owned());
    let address = format!("127.0.0.1:{port}").parse()?;
    let id = std::env::var("SEED_USER_ID").unwrap_or_default();
    let user = pb::User {
        id: id.clone(),
        name: "Ada Lovelace".to_owned(),
        email: "ada@example.com".to_owned(),
        create_time: Some(CREATED),
        update_time: Some(CREATED),
    };
    let users = RwLock::new(HashMap::from([(id, user)]));
    #[cfg(feature = "postgres")]
    let pool = match std::env::var("DATABASE_URL") {
        // The generated server's pool: 10 connections, no ping before each use.
        Ok(url) => Some(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(10)
                .test_before_acquire(false)
                .connect(&url)
                .await?,
        ),
        Err(_) => None,
    };
    #[cfg(feature = "sqlite")]
    let pool = match std::env::var("DATABASE_URL") {
        Ok(url) => Some(sqlite(&url).await?),
        Err(_) => None,
    };
    let minimal = Minimal {
        users,
        #[cfg(any(feature = "postgres", feature = "sqlite"))]
        pool,
    };
    Server::builder()
        .add_service(UserServiceServer::new(minimal))
        .serve(address)
        .await?;
    Ok(())
}

/// The generated server's SQLite pool (4 connections, write-ahead log, `synchronous=NORMAL`,
/// a busy timeout) over a file of its own: the generated migration's table, holding the user
/// `SEED_USER_ID` names.
#[cfg(feature = "sqlite")]
async fn sqlite(url: &str) -> Result<Pool, Box<dyn std::error::Error>> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
    use std::str::FromStr;
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(std::time::Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .connect_with(options)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS users (sequence INTEGER PRIMARY KEY AUTOINCREMENT, \
         id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, email TEXT NOT NULL, \
         create_time TEXT NOT NULL, update_time TEXT NOT NULL)",
    )
    .execute(&pool)
    .await?;
    let now = time::OffsetDateTime::now_utc();
    sqlx::query("INSERT OR IGNORE INTO users (id, name, email, create_time, update_time) VALUES ($1, $2, $3, $4, $4)")
        .bind(std::env::var("SEED_USER_ID").unwrap_or_default())
        .bind("Ada Lovelace")
        .bind("ada@example.com")
        .bind(now)
        .execute(&pool)
        .await?;
    Ok(pool)
}
