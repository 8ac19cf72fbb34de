//! Bearer-token authentication, checked on every endpoint that needs a user.

use neighborbid_shared::ids::SessionId;
use neighborbid_shared::users::{self, SessionToken, User};
use poem::Request;
use poem::http::{Method, StatusCode};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use super::error::{ApiError, ErrorSet};
use super::throttle;
use crate::state::AppState;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The session the token belongs to, so logout can revoke exactly it.
    pub session_id: SessionId,
    /// The account.
    pub user: User,
}

/// `Authorization: Bearer <token>` with a token from `POST /api/v1/sessions`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "opaque", checker = "check_token")]
pub struct BearerAuth(pub Caller);

struct AuthErrors;
impl ErrorSet for AuthErrors {
    const STATUSES: &'static [(u16, &'static str)] =
        &[(401, "missing, invalid, expired or revoked token"), (429, "too many writes by this user")];
}

/// Authenticates the caller; a write (any method but GET and HEAD) also counts against the caller's
/// rate limit, so every write endpoint is limited without each handler remembering to be.
async fn check_token(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let state = req.data::<AppState>().expect("AppState is attached to every route");
    let found = {
        let mut conn = state.pool.acquire().await.map_err(ApiError::<AuthErrors>::from)?;
        users::authenticate(&mut conn, &SessionToken::from_client(&bearer.token)).await
    };
    match found {
        Ok(Some((session_id, user))) => {
            if !matches!(*req.method(), Method::GET | Method::HEAD) {
                throttle::write::<AuthErrors>(state, user.id).await?;
            }
            Ok(Caller { session_id, user })
        }
        Ok(None) => Err(ApiError::<AuthErrors>::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the bearer token is invalid, expired or revoked; log in again",
        )
        .into()),
        Err(err) => Err(ApiError::<AuthErrors>::from(err).into()),
    }
}
