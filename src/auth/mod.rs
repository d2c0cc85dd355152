//! Who may do what. `Keyring` holds the configured API keys (SHA-256 digests only)
//! and resolves a token to a key in constant time; the `authenticate` middleware
//! does that once per request and leaves a `Caller` in the request, which handlers
//! take as an extractor to check scopes (`read`, `write`, `admin`) and ownership.
//! `quota` keeps each key's active count, request rate and daily spend; `share`
//! how much of each shared cap one key may hold. `browser` refuses, before any
//! of that, a `Host` the server does not answer to and cross-origin state changes.
//! With no keys configured auth is off and every request is the anonymous caller,
//! who may do everything.

pub mod browser;
pub mod caller;
pub mod cors;
pub mod keyring;
pub mod metrics;
pub mod middleware;
pub mod quota;
pub mod share;

pub use caller::Caller;
pub use keyring::{new_token, sha256_hex, Key, Keyring, NoRandomness};
pub use quota::{KeyLimit, Ledger};
pub use share::Shares;
