//! All integration tests in one binary (faster to link): each module drives the
//! real server binary over HTTP.

mod common;

mod analytics;
mod api;
mod architecture;
mod archive;
mod archive_restart;
mod auth;
mod auth_matrix;
mod auth_quota;
mod cancel;
mod caps;
mod cluster;
mod cluster_fence;
mod cluster_keys;
mod compat;
mod dashboard;
mod deploy;
mod documents;
mod durable;
mod history;
mod hostile;
mod lifecycle;
mod limits;
mod logs;
mod mcp;
mod metrics;
mod openapi;
mod packing;
mod postgres;
mod providers;
mod queries;
mod readme;
mod rebinding;
mod redis_mirror;
mod sqlite_lock;
mod startup;
mod supervision;
mod tenants;
mod tools;
mod webhooks;
