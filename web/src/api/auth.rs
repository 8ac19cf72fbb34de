//! Bearer-token authentication, checked on every endpoint that needs a user.

use neighborbid_shared::users::{self, SessionToken, User};
use poem::Request;
use poem::http::StatusCode;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use super::error::{ApiError, ErrorSet};
use crate::state::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The session the token belongs to, so logout can revoke exactly it.
    pub session_id: i64,
    /// The account.
    pub user: User,
}

/// `Authorization: Bearer <token>` with a token from `POST /api/v1/sessions`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "opaque", checker = "check_token")]
pub struct BearerAuth(pub Caller);

struct AuthErrors;
impl ErrorSet for AuthErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[(401, "missing, invalid, expired or revoked token")];
}

async fn check_token(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let state = req.data::<AppState>().expect("AppState is attached to every route");
    let mut conn = state.pool.acquire().await.map_err(ApiError::<AuthErrors>::from)?;
    match users::authenticate(&mut conn, &SessionToken::from_client(&bearer.token)).await {
        Ok(Some((session_id, user))) => Ok(Caller { session_id, user }),
        Ok(None) => Err(ApiError::<AuthErrors>::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the bearer token is invalid, expired or revoked; log in again",
        )
        .into()),
        Err(err) => Err(ApiError::<AuthErrors>::from(err).into()),
    }
}
