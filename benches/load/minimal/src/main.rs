//! The smallest tonic server of `user.v1.UserService`: `GetUser` answers a fixed record, the
//! rest UNIMPLEMENTED. No auth, metrics, logging or limits: the baseline of benches/load/run.

use std::pin::Pin;

use tonic::{transport::Server, Request, Response, Status};

mod pb {
    tonic::include_proto!("user.v1");
}

use pb::user_service_server::{UserService, UserServiceServer};

struct Minimal;

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
        let user = pb::User {
            id: request.into_inner().id,
            name: "Ada Lovelace".to_owned(),
            email: "ada@example.com".to_owned(),
            create_time: Some(CREATED),
            update_time: Some(CREATED),
        };
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
    Server::builder()
        .add_service(UserServiceServer::new(Minimal))
        .serve(address)
        .await?;
    Ok(())
}
