//! A hand-written tonic server of `user.v1.UserService` with what a minimal service needs and
//! nothing else: `GetUser` looks the user up in memory (one user, seeded from `SEED_USER_ID`),
//! the rest answer UNIMPLEMENTED. No auth, metrics, logging, limits or panic guard: the
//! baseline of benches/load/run.

use std::{collections::HashMap, pin::Pin, sync::RwLock};

use tonic::{transport::Server, Request, Response, Status};

mod pb {
    tonic::include_proto!("user.v1");
}

use pb::user_service_server::{UserService, UserServiceServer};

struct Minimal {
    users: RwLock<HashMap<String, pb::User>>,
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
        _: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
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
    Server::builder()
        .add_service(UserServiceServer::new(Minimal { users }))
        .serve(address)
        .await?;
    Ok(())
}
