//! A hand-written tonic server of `user.v1.UserService` with what a minimal service needs and
//! nothing else: `GetUser` looks the user up in memory (one user, seeded from `SEED_USER_ID`),
//! the rest answer UNIMPLEMENTED. No auth, metrics, logging, limits or panic guard: the
//! baseline of benches/load/run. With the `postgres` feature and `DATABASE_URL` set,
//! `GetUser` and `CreateUser` run the generated store's queries over a pool like its own.

use std::{collections::HashMap, pin::Pin, sync::RwLock};

use tonic::{transport::Server, Request, Response, Status};

mod pb {
    tonic::include_proto!("user.v1");
}

use pb::user_service_server::{UserService, UserServiceServer};

struct Minimal {
    users: RwLock<HashMap<String, pb::User>>,
    #[cfg(feature = "postgres")]
    pool: Option<sqlx::PgPool>,
}

#[cfg(feature = "postgres")]
#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    name: String,
    email: String,
    create_time: time::OffsetDateTime,
    update_time: time::OffsetDateTime,
}

#[cfg(feature = "postgres")]
fn timestamp(time: time::OffsetDateTime) -> prost_types::Timestamp {
    let nanos = time.unix_timestamp_nanos();
    prost_types::Timestamp {
        seconds: nanos.div_euclid(1_000_000_000) as i64,
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

#[cfg(feature = "postgres")]
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
        #[cfg(feature = "postgres")]
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
        #[cfg(feature = "postgres")]
        if let Some(pool) = &self.pool {
            let request = request.into_inner();
            let row: Row = sqlx::query_as(
                "INSERT INTO users (id, name, email) VALUES ($1, $2, $3) \
                 RETURNING sequence, id, name, email, create_time, update_time",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(&request.name)
            .bind(&request.email)
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
    let minimal = Minimal {
        users,
        #[cfg(feature = "postgres")]
        pool,
    };
    Server::builder()
        .add_service(UserServiceServer::new(minimal))
        .serve(address)
        .await?;
    Ok(())
}
