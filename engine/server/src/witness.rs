//! A witness of another installation's audit log over HTTP, as C2SP `tlog-witness` specifies
//! it: `POST /add-checkpoint` takes `old <size>`, a consistency proof and the log's signed
//! checkpoint, and answers with the witness's cosignature line (200), the size it holds (409,
//! `text/x.tlog.size`), or why not (400, 403, 404, 422). What `studyflow audit witness` serves;
//! the checks are [`studyflow_store::witness::Witness`]'s, made one request at a time so that
//! checking `old` and keeping the new checkpoint are one step.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use studyflow_store::witness::{Refusal, Witness};

/// The largest request: 63 proof lines and a checkpoint with its signatures fit in a few KiB.
const LIMIT: usize = 64 * 1024;

/// The witness's routes.
pub fn router(witness: Witness) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(LIMIT))
        .with_state(Arc::new(Mutex::new(witness)))
}

/// Serves the witness on `listener` until `stop`.
pub async fn serve(
    witness: Witness,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(witness))
        .with_graceful_shutdown(stop)
        .await
}

async fn add_checkpoint(State(w): State<Arc<Mutex<Witness>>>, body: String) -> Response {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let answered = tokio::task::spawn_blocking(move || {
        let w = w.lock().unwrap_or_else(|e| e.into_inner());
        w.add_checkpoint(&body, now)
    })
    .await;
    let text = |status: StatusCode, kind: &'static str, body: String| {
        (status, [(header::CONTENT_TYPE, kind)], body).into_response()
    };
    match answered {
        Ok(Ok(cosignature)) => {
            tracing::info!("checkpoint cosigned");
            text(StatusCode::OK, "text/plain; charset=utf-8", cosignature)
        }
        Ok(Err(Refusal::Conflict(size))) => text(
            StatusCode::CONFLICT,
            "text/x.tlog.size",
            format!("{size}\n"),
        ),
        Ok(Err(refusal)) => {
            tracing::warn!(%refusal, "checkpoint not cosigned");
            let status =
                StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            text(status, "text/plain; charset=utf-8", format!("{refusal}\n"))
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
