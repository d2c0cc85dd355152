//! `GET /v1/workflows/{id}/events`: Server-Sent Events. Each event carries
//! `id:` = its per-workflow seq and `event:` = its type; `Last-Event-ID` (header or
//! `?last_event_id=`) replays exactly the events after it, from memory for a running
//! workflow and from the stored log otherwise. The stream closes after the terminal
//! event. Framing and keep-alives are actix-web-lab's `sse`; open streams are
//! capped (`events::streams`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse, Responder};
use actix_web_lab::sse;
use futures::stream;
use tokio::sync::mpsc;

use super::shared::{check_visible, find_content, ServedFrom};
use utoipa_actix_web::service_config::ServiceConfig;

use super::openapi::{Doc, ErrorEnvelope};
use super::responses::ByIdErrors;
use crate::actors::registry::{EventFeed, SubscribeEvents};
use crate::auth::Caller;
use crate::config::Scope;
use crate::domain::Event;
use crate::error::ApiError;
use crate::events::streams::StreamPermit;
use crate::AppState;

const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(Doc::new().to::<__path_events, _, _>(events));
}

pub fn frame(e: &Event) -> sse::Data {
    let data = e.to_json();
    sse::Data::new(data)
        .id(e.seq.to_string())
        .event(e.kind.as_str())
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
pub type Framer = fn(&Event) -> sse::Data;

struct SseState {
    backlog: VecDeque<Arc<Event>>,
    rx: Option<mpsc::Receiver<Arc<Event>>>,
    done: bool,
    frame: Framer,
    /// Holds the stream's place under the caps until the body is dropped.
    _permit: StreamPermit,
}

/// Backlog first, then live events; ends after a terminal event or when the
/// registry closes the channel (the client may reconnect with Last-Event-ID).
pub fn sse_response(req: &HttpRequest, stream: EventStream, frame: Framer) -> HttpResponse {
    let archived = stream.archived;
    let state = SseState {
        backlog: stream.backlog.into(),
        rx: stream.rx,
        done: false,
        frame,
        _permit: stream.permit,
    };
    let events = stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let ev = match st.backlog.pop_front() {
            Some(ev) => ev,
            None => st.rx.as_mut()?.recv().await?,
        };
        st.done = ev.kind.is_terminal();
        let data = (st.frame)(&ev);
        Some((Ok::<_, Infallible>(sse::Event::Data(data)), st))
    });
    let mut resp = sse::Sse::from_stream(events)
        .with_keep_alive(KEEP_ALIVE)
        .customize()
        .insert_header(("X-Accel-Buffering", "no"));
    if archived {
        resp = resp.insert_header(("X-Served-From", ServedFrom::Archive));
    }
    resp.respond_to(req).map_into_boxed_body()
}

/// A workflow's events after some seq: a backlog, then live ones while it runs.
pub struct EventStream {
    backlog: Vec<Arc<Event>>,
    rx: Option<mpsc::Receiver<Arc<Event>>>,
    permit: StreamPermit,
    /// The backlog came from the workflow's archive object.
    pub archived: bool,
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
/// if it finished moments ago), else the stored log. Refused with 429 when the
/// stream caps are reached, or the key (`key`) holds its share of them.
pub async fn open(
    state: &AppState,
    id: &str,
    after: u64,
    key: Option<&str>,
) -> Result<EventStream, ApiError> {
    let permit = state.streams.acquire(id, key)?;
    let sub = SubscribeEvents {
        id: id.to_string(),
        after,
    };
    match state.registry.send(sub).await? {
        EventFeed::Live { backlog, rx } => Ok(EventStream {
            backlog,
            rx: Some(rx),
            permit,
            archived: false,
        }),
        EventFeed::Finished { backlog } => Ok(EventStream {
            backlog,
            rx: None,
            permit,
            archived: false,
        }),
        EventFeed::NotActive => {
            let found = find_content(state, id).await?;
            if let Some(a) = &found.archived {
                let backlog = a.events.iter().filter(|e| e.seq > after);
                return Ok(EventStream {
                    backlog: backlog.cloned().map(Arc::new).collect(),
                    rx: None,
                    permit,
                    archived: true,
                });
            }
            state.read_barrier().await;
            let stored = state.store.events_after(&found.wf.id, after).await?;
            let finished = found.wf.status.is_terminal()
                || stored.last().is_some_and(|e| e.kind.is_terminal());
            // Several instances: it runs elsewhere; follow it in the store.
            let rx = match &state.cluster {
                Some(c) if !finished => {
                    let from = stored.last().map_or(after, |e| e.seq);
                    let watch = c.cluster.watchers.watch(id);
                    Some(follow(
                        Arc::clone(&state.store),
                        watch,
                        id.to_string(),
                        from,
                    ))
                }
                _ => None,
            };
            Ok(EventStream {
                backlog: stored.into_iter().map(Arc::new).collect(),
                rx,
                permit,
                archived: false,
            })
        }
    }
}

/// Between two reads of a followed workflow's events at most, should a notice
/// be lost.
const FOLLOW_POLL: Duration = Duration::from_secs(1);

/// Streams the events of a workflow running on another instance: each notice
/// (the owner's store writer NOTIFYs as it commits) or `FOLLOW_POLL` reads the
/// events after the last one sent; ends after the terminal event or when the
/// client goes.
fn follow(
    store: Arc<dyn crate::store::Store>,
    mut watch: crate::cluster::listener::Watch,
    id: String,
    mut after: u64,
) -> mpsc::Receiver<Arc<Event>> {
    let (tx, rx) = mpsc::channel(256);
    actix_rt::spawn(async move {
        loop {
            tokio::select! {
                woke = watch.rx.changed() => {
                    if woke.is_err() {
                        tokio::time::sleep(FOLLOW_POLL).await;
                    }
                }
                _ = tokio::time::sleep(FOLLOW_POLL) => {}
                _ = tx.closed() => return,
            }
            let Ok(events) = store.events_after(&id, after).await else {
                continue;
            };
            for ev in events {
                after = ev.seq;
                let last = ev.kind.is_terminal();
                if tx.send(Arc::new(ev)).await.is_err() || last {
                    return;
                }
            }
        }
    });
    rx
}

/// The workflow's events as Server-Sent Events (`id:` = seq); closes after the
/// terminal event.
#[utoipa::path(get, path = "/v1/workflows/{id}/events", tag = "workflows",
    params(
        ("id" = String, Path, description = "Workflow id (wf_…)"),
        ("Last-Event-ID" = Option<u64>, Header, nullable = false, description = "Replay the events after this seq"),
        ("last_event_id" = Option<u64>, Query, nullable = false, description = "Same, for clients that cannot set headers"),
    ),
    responses(
        (status = 200, description = "text/event-stream", content_type = "text/event-stream", body = crate::api::openapi::SseEvent),
        (status = 400, description = "validation_error (Last-Event-ID)", body = ErrorEnvelope),
        ByIdErrors,
    ))]
async fn events(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    check_visible(&state, &caller, &id).await?;
    let after = last_event_id(&req)?;
    let stream = open(&state, &id, after, caller.key_name()).await?;
    Ok(sse_response(&req, stream, frame))
}
