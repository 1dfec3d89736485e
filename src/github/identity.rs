//! The controller's GitHub identity: credentials read from Secrets, and one [`Transport`] per
//! installation (an App) or one for the token.
//!
//! - **GitHub App**: the private key signs a JWT (RS256, `iss` = app id, 9 minutes, by octocrab);
//!   the installation of a repository comes from the delivery's `installation.id`, else the config's
//!   fixed id, else `GET /repos/{owner}/{repo}/installation` (remembered per repository). Each
//!   installation has its own client whose access token octocrab caches until 30 s before it
//!   expires (tokens live one hour), and its own rate-limit state (GitHub limits per installation).
//! - **Token**: one client; it cannot create check runs (the reporter uses commit statuses).
//!
//! Secrets are read through the API server (RBAC `get` on the named Secrets only) and re-read after
//! [`SECRET_TTL`] or a 401, so a rotated key or token takes effect without a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId};
use tokio::sync::Mutex as AsyncMutex;

use super::config::GitHubConfig;
use super::error::{Error, Result};
use super::http::{Call, Observer, Transport};
use crate::crd::SecretKeyRef;

/// How long Secret values are trusted before they are read again.
pub const SECRET_TTL: Duration = Duration::from_secs(300);

/// Which kind of identity the controller has; it decides how results are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityKind {
    /// A GitHub App installation: check runs.
    App,
    /// A token: commit statuses.
    Token,
}

/// Where credentials come from. `Kube` reads Secrets; `Static` holds values (tests, one-off CLIs).
#[derive(Clone)]
pub enum SecretSource {
    /// Read the named keys of Secrets in `namespace` through the API server.
    Kube {
        /// A client of the API server.
        client: kube::Client,
        /// The Secrets' namespace.
        namespace: String,
    },
    /// Values given directly, keyed by `<secret>/<key>`.
    Static(HashMap<String, String>),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Kube { namespace, .. } => write!(f, "Kube({namespace})"),
            SecretSource::Static(m) => write!(f, "Static({} keys)", m.len()),
        }
    }
}

impl SecretSource {
    async fn read(&self, r: &SecretKeyRef) -> Result<String> {
        match self {
            SecretSource::Static(m) => m
                .get(&format!("{}/{}", r.name, r.key))
                .cloned()
                .ok_or_else(|| Error::Config(format!("no value for Secret {} key {}", r.name, r.key))),
            SecretSource::Kube { client, namespace } => {
                let s = Api::<Secret>::namespaced(client.clone(), namespace).get_opt(&r.name).await.map_err(|e| {
                    Error::Transport {
                        method: "GET".into(),
                        path: format!("secrets/{namespace}/{}", r.name),
                        message: e.to_string(),
                    }
                })?;
                let s = s.ok_or_else(|| Error::Config(format!("Secret {namespace}/{} does not exist", r.name)))?;
                let v = s
                    .data
                    .as_ref()
                    .and_then(|d| d.get(&r.key))
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                    .or_else(|| s.string_data.as_ref().and_then(|d| d.get(&r.key)).cloned())
                    .ok_or_else(|| Error::Config(format!("Secret {namespace}/{} has no key {}", r.name, r.key)))?;
                Ok(v)
            }
        }
    }
}

struct Loaded {
    at: Instant,
    /// The App client (JWT) or the token client.
    root: Octocrab,
    token: Option<String>,
}

/// The controller's GitHub identity. Cheap to share (`Arc`).
pub struct Identity {
    config: GitHubConfig,
    secrets: SecretSource,
    observer: Option<Observer>,
    loaded: AsyncMutex<Option<Loaded>>,
    transports: Mutex<HashMap<Option<i64>, Arc<Transport>>>,
    installations: Mutex<HashMap<String, i64>>,
    bot_login: Mutex<Option<String>>,
    secret_values: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("api_url", &self.config.api_url).field("kind", &self.kind()).finish()
    }
}

impl Identity {
    /// An identity for `config`, reading credentials from `secrets`. Errors: an invalid config.
    pub fn new(config: GitHubConfig, secrets: SecretSource, observer: Option<Observer>) -> Result<Self> {
        config.validate().map_err(Error::Config)?;
        Ok(Self {
            config,
            secrets,
            observer,
            loaded: AsyncMutex::new(None),
            transports: Mutex::new(HashMap::new()),
            installations: Mutex::new(HashMap::new()),
            bot_login: Mutex::new(None),
            secret_values: Mutex::new(Vec::new()),
        })
    }

    /// The settings this identity was built from.
    pub fn config(&self) -> &GitHubConfig {
        &self.config
    }

    /// App or token.
    pub fn kind(&self) -> IdentityKind {
        if self.config.app.is_some() { IdentityKind::App } else { IdentityKind::Token }
    }

    /// The secret values read so far (the token, the private key), for masking.
    pub fn secret_values(&self) -> Vec<String> {
        self.secret_values.lock().expect("secret values").clone()
    }

    fn builder(
        &self,
    ) -> Result<
        octocrab::OctocrabBuilder<
            octocrab::NoSvc,
            octocrab::DefaultOctocrabBuilderConfig,
            octocrab::NoAuth,
            octocrab::NotLayerReady,
        >,
    > {
        let limits = self.config.limits();
        Octocrab::builder()
            .base_uri(self.config.api_url.as_str())
            .map_err(|e| Error::Config(format!("github.apiUrl: {e}")))
            .map(|b| {
                b.set_connect_timeout(Some(Duration::from_secs(10)))
                    .set_read_timeout(Some(limits.request_timeout))
                    .set_write_timeout(Some(limits.request_timeout))
            })
    }

    async fn root(&self) -> Result<(Octocrab, bool)> {
        let mut g = self.loaded.lock().await;
        if let Some(l) = g.as_ref().filter(|l| l.at.elapsed() < SECRET_TTL) {
            return Ok((l.root.clone(), false));
        }
        let (root, token, secret) = if let Some(app) = &self.config.app {
            let pem = self.secrets.read(&app.private_key_secret).await?;
            let b = self.builder()?.app_from_rsa_pem(AppId(app.app_id.max(0) as u64), pem.as_bytes()).map_err(|e| {
                Error::Config(format!(
                    "the private key in Secret {} is not an RSA PEM key: {}",
                    app.private_key_secret.name,
                    e.to_string().lines().next().unwrap_or("")
                ))
            })?;
            (b.build().map_err(|e| Error::Config(e.to_string()))?, None, pem)
        } else {
            let r = self.config.token_secret.as_ref().expect("validated: app or token");
            let token = self.secrets.read(r).await?.trim().to_string();
            let crab =
                self.builder()?.personal_token(token.clone()).build().map_err(|e| Error::Config(e.to_string()))?;
            (crab, Some(token.clone()), token)
        };
        {
            let mut sv = self.secret_values.lock().expect("secret values");
            if !sv.contains(&secret) {
                sv.push(secret);
            }
        }
        let changed = g.as_ref().map(|l| l.token != token).unwrap_or(true);
        *g = Some(Loaded { at: Instant::now(), root: root.clone(), token });
        Ok((root, changed))
    }

    /// Forget cached credentials and clients (after a 401), so the next call reads the Secrets again.
    pub async fn invalidate(&self) {
        *self.loaded.lock().await = None;
        self.transports.lock().expect("transports").clear();
    }

    /// The transport that acts on `repo` (`owner/name`). `installation_hint` is the delivery's
    /// `installation.id`. Errors: unreadable Secrets, the App is not installed on the repository
    /// ([`Error::NotFound`]), transient failures.
    pub async fn transport(&self, repo: &str, installation_hint: Option<i64>) -> Result<Arc<Transport>> {
        let (root, changed) = self.root().await?;
        if changed {
            self.transports.lock().expect("transports").clear();
        }
        let limits = self.config.limits();
        let Some(app) = &self.config.app else {
            let mut t = self.transports.lock().expect("transports");
            return Ok(t
                .entry(None)
                .or_insert_with(|| Arc::new(Transport::new(root, limits, self.observer.clone())))
                .clone());
        };
        let key = repo.to_ascii_lowercase();
        let known = self.installations.lock().expect("installations").get(&key).copied();
        let id = match installation_hint.or(app.installation_id).or(known) {
            Some(id) => id,
            None => {
                let jwt = self.app_transport(&root);
                let (owner, name) = repo.split_once('/').unwrap_or((repo, ""));
                #[derive(serde::Deserialize)]
                struct Installation {
                    id: i64,
                }
                let inst: Installation = jwt
                    .json(&Call::get("apps/get-repo-installation", format!("/repos/{owner}/{name}/installation")))
                    .await?;
                inst.id
            }
        };
        self.installations.lock().expect("installations").insert(key, id);
        let mut t = self.transports.lock().expect("transports");
        if let Some(tr) = t.get(&Some(id)) {
            return Ok(tr.clone());
        }
        let crab = root
            .installation(InstallationId(id.max(0) as u64))
            .map_err(|e| Error::Config(e.to_string().lines().next().unwrap_or("").to_string()))?;
        let tr = Arc::new(Transport::new(crab, limits, self.observer.clone()));
        t.insert(Some(id), tr.clone());
        Ok(tr)
    }

    fn app_transport(&self, root: &Octocrab) -> Transport {
        Transport::new(root.clone(), self.config.limits(), self.observer.clone())
    }

    /// The login this identity's commits and comments carry: `github.botLogin`, else
    /// `<slug>[bot]` from `GET /app` (an App), else `login` from `GET /user` (a token).
    pub async fn bot_login(&self) -> Result<String> {
        if let Some(l) = &self.config.bot_login {
            return Ok(l.clone());
        }
        if let Some(l) = self.bot_login.lock().expect("bot login").clone() {
            return Ok(l);
        }
        let (root, _) = self.root().await?;
        let t = self.app_transport(&root);
        let login = if self.config.app.is_some() {
            #[derive(serde::Deserialize)]
            struct App {
                slug: String,
            }
            let app: App = t.json(&Call::get("apps/get-authenticated", "/app")).await?;
            format!("{}[bot]", app.slug)
        } else {
            #[derive(serde::Deserialize)]
            struct User {
                login: String,
            }
            let u: User = t.json(&Call::get("users/get-authenticated", "/user")).await?;
            u.login
        };
        *self.bot_login.lock().expect("bot login") = Some(login.clone());
        Ok(login)
    }
}
