//! `Caller`: the key a request was made with (or the anonymous caller when auth
//! is off), as handlers see it.

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::{dev::Payload, FromRequest, HttpMessage, HttpRequest};

use crate::config::Scope;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes {
    pub read: bool,
    pub write: bool,
    pub admin: bool,
}

impl Scopes {
    /// `admin` includes `read` and `write`.
    pub fn from_list(list: &[Scope]) -> Scopes {
        let admin = list.contains(&Scope::Admin);
        Scopes {
            read: admin || list.contains(&Scope::Read),
            write: admin || list.contains(&Scope::Write),
            admin,
        }
    }

    pub fn all() -> Scopes {
        Scopes {
            read: true,
            write: true,
            admin: true,
        }
    }

    pub fn has(&self, s: Scope) -> bool {
        match s {
            Scope::Read => self.read,
            Scope::Write => self.write,
            Scope::Admin => self.admin,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's name; None for the anonymous caller (auth off).
    key: Option<Arc<str>>,
    scopes: Scopes,
}

impl Caller {
    /// Auth is off: one caller who may do everything and owns nothing.
    pub fn anonymous() -> Caller {
        Caller {
            key: None,
            scopes: Scopes::all(),
        }
    }

    /// Auth is on and the route is public: no key, no scopes.
    pub fn anonymous_public() -> Caller {
        Caller {
            key: None,
            scopes: Scopes::default(),
        }
    }

    pub fn for_key(name: Arc<str>, scopes: Scopes) -> Caller {
        Caller {
            key: Some(name),
            scopes,
        }
    }

    pub fn key_name(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The owner recorded on what this caller creates.
    pub fn owner(&self) -> Option<String> {
        self.key.as_deref().map(str::to_string)
    }

    pub fn scopes(&self) -> Scopes {
        self.scopes
    }

    pub fn can_read(&self) -> bool {
        self.scopes.read
    }

    pub fn can_write(&self) -> bool {
        self.scopes.write
    }

    pub fn is_admin(&self) -> bool {
        self.scopes.admin
    }

    /// 403 `forbidden` unless the key has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.has(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                key: self.key_name().unwrap_or("anonymous").to_string(),
                scope: scope.as_str(),
            })
        }
    }

    /// Admin sees everything; any other key only what it created.
    pub fn may_see(&self, owner: Option<&str>) -> bool {
        self.is_admin() || (self.key.is_some() && owner == self.key_name())
    }

    /// The owner to filter lists and analytics by: None = everyone's (admin).
    pub fn owner_filter(&self) -> Option<String> {
        if self.is_admin() {
            None
        } else {
            // A non-admin key always has a name: the anonymous caller is admin.
            Some(self.key_name().unwrap_or("").to_string())
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // The middleware always leaves one; without it, fail closed.
        ready(req.extensions().get::<Caller>().cloned().ok_or_else(|| {
            ApiError::Unauthorized("no credentials were checked for this request".into())
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_includes_the_others_and_sees_every_owner() {
        let admin = Caller::for_key("ops".into(), Scopes::from_list(&[Scope::Admin]));
        assert!(admin.can_read() && admin.can_write() && admin.is_admin());
        assert!(admin.may_see(Some("ci")) && admin.may_see(None));
        assert_eq!(admin.owner_filter(), None);
        let ci = Caller::for_key("ci".into(), Scopes::from_list(&[Scope::Read]));
        assert!(ci.can_read() && !ci.can_write() && !ci.is_admin());
        assert!(ci.may_see(Some("ci")));
        assert!(!ci.may_see(Some("other")) && !ci.may_see(None));
        assert_eq!(ci.owner_filter().as_deref(), Some("ci"));
        assert!(matches!(
            ci.require(Scope::Write),
            Err(ApiError::Forbidden { .. })
        ));
        let anon = Caller::anonymous();
        assert!(anon.is_admin() && anon.owner().is_none());
    }
}
