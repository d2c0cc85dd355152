//! `GET /v1/workflows/{id}/events`: Server-Sent Events. Each event carries
//! `id:` = its per-workflow seq and `event:` = its type; `Last-Event-ID` (header or
//! `?last_event_id=`) replays exactly the events after it, from memory for a running
//! workflow and from the stored log otherwise. The stream closes after the terminal
//! event.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{http::header, web, HttpRequest, HttpResponse};
use futures::stream;
use tokio::sync::mpsc;

use super::allow_only;
use super::shared::{check_visible, find};
use crate::actors::registry::{EventFeed, SubscribeEvents};
use crate::auth::Caller;
use crate::config::Scope;
use crate::domain::Event;
use crate::error::ApiError;
use crate::AppState;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/workflows/{id}/events")
            .route(web::get().to(events))
            .default_service(allow_only("GET")),
    );
}

pub fn frame(e: &Event) -> Bytes {
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        e.seq,
        e.kind.as_str()
    ))
}

/// The seq to resume after: `Last-Event-ID` header, else `?last_event_id=`, else 0.
pub fn last_event_id(req: &HttpRequest) -> Result<u64, ApiError> {
    let raw = req
        .headers()
        .get("Last-Event-ID")
        .map(|v| v.to_str().unwrap_or("invalid").to_string())
        .or_else(|| {
            web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
                .ok()
                .and_then(|q| q.get("last_event_id").cloned())
        });
    match raw {
        None => Ok(0),
        Some(s) if s.trim().is_empty() => Ok(0),
        Some(s) => s.trim().parse().map_err(|_| {
            ApiError::validation(
                "Last-Event-ID",
                format!("Last-Event-ID must be a non-negative integer, got '{s}'"),
            )
        }),
    }
}

/// How one event is written on the wire.
pub type Framer = fn(&Event) -> Bytes;

struct SseState {
    backlog: VecDeque<Arc<Event>>,
    rx: Option<mpsc::Receiver<Arc<Event>>>,
    ping: tokio::time::Interval,
    done: bool,
    frame: Framer,
}

/// Backlog first, then live events; ends after a terminal event or when the
/// registry closes the channel (the client may reconnect with Last-Event-ID).
pub fn sse_response(stream: EventStream, frame: Framer) -> HttpResponse {
    let state = SseState {
        backlog: stream.backlog.into(),
        rx: stream.rx,
        ping: tokio::time::interval(KEEP_ALIVE),
        done: false,
        frame,
    };
    let body = stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        if let Some(ev) = st.backlog.pop_front() {
            st.done = ev.kind.is_terminal();
            let bytes = (st.frame)(&ev);
            return Some((Ok::<_, Infallible>(bytes), st));
        }
        let rx = st.rx.as_mut()?;
        tokio::select! {
            ev = rx.recv() => {
                let ev = ev?;
                st.done = ev.kind.is_terminal();
                let bytes = (st.frame)(&ev);
                Some((Ok(bytes), st))
            }
            _ = st.ping.tick() => Some((Ok(Bytes::from_static(b": keep-alive\n\n")), st)),
        }
    });
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

/// A workflow's events after some seq: a backlog, then live ones while it runs.
pub struct EventStream {
    backlog: Vec<Arc<Event>>,
    rx: Option<mpsc::Receiver<Arc<Event>>>,
}

impl EventStream {
    /// The next event: the backlog first, then live ones; `None` when there is no
    /// live feed or the registry closed it. (MCP's `wait` reads events this way.)
    pub async fn next(&mut self) -> Option<Arc<Event>> {
        if !self.backlog.is_empty() {
            return Some(self.backlog.remove(0));
        }
        self.rx.as_mut()?.recv().await
    }
}

/// Live from the registry while the workflow runs here (or from its log in memory
/// if it finished moments ago), else the stored log.
pub async fn open(state: &AppState, id: &str, after: u64) -> Result<EventStream, ApiError> {
    let sub = SubscribeEvents {
        id: id.to_string(),
        after,
    };
    match state.registry.send(sub).await? {
        EventFeed::Live { backlog, rx } => Ok(EventStream {
            backlog,
            rx: Some(rx),
        }),
        EventFeed::Finished { backlog } => Ok(EventStream { backlog, rx: None }),
        EventFeed::NotActive => {
            let (wf, _) = find(state, id).await?;
            state.read_barrier().await;
            let stored = state.store.events_after(&wf.id, after).await?;
            Ok(EventStream {
                backlog: stored.into_iter().map(Arc::new).collect(),
                rx: None,
            })
        }
    }
}

async fn events(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    check_visible(&state, &caller, &id).await?;
    let after = last_event_id(&req)?;
    let stream = open(&state, &id, after).await?;
    Ok(sse_response(stream, frame))
}
