//! The instance module's use cases (spec §2): create, connect, list, logout,
//! delete, with ownership checked on every call.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;

use crate::{
    Error, Result,
    events::{AppEvent, EventBus},
    instance::{
        ConnectionState, Instance, InstanceName, InstanceSettings, NewInstance, SessionStatus,
        SettingsPatch, WebhookConfig, parse_custom_token,
    },
    jid::Jid,
    message_store::StoredMessage,
    messages,
    store::{Principal, Store},
    token::Token,
    whatsapp::{
        ChatPresence, Event, InboundMessage, LoginCode, LoginMethod, Outgoing, SentMessage,
        WhatsApp, WhatsAppEvent,
    },
};

/// What a caller asks for in `POST /api/instance/new`, before validation.
#[derive(Debug, Clone, Default)]
pub struct CreateInstance {
    pub name: String,
    pub token: Option<String>,
    /// Over the defaults.
    pub settings: SettingsPatch,
    pub webhook: WebhookConfig,
    pub webhook_authorization: Option<String>,
}

/// A created instance and its plaintext TokenInstance, shown once.
#[derive(Debug)]
pub struct Created {
    pub instance: Instance,
    pub token: Token,
}

/// Instances with their live session states, in the same order. The
/// instances are shared with the store's cache, not copied.
#[derive(Debug, Clone)]
pub struct InstanceViews {
    pub instances: Arc<[Instance]>,
    pub sessions: Vec<SessionStatus>,
}

impl InstanceViews {
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Instance, &SessionStatus)> {
        self.instances.iter().zip(&self.sessions)
    }
}

#[derive(Clone)]
pub struct InstanceService {
    store: Arc<dyn Store>,
    whatsapp: Arc<dyn WhatsApp>,
    bus: Arc<EventBus>,
    connect_timeout: Duration,
}

impl InstanceService {
    pub fn new(
        store: Arc<dyn Store>,
        whatsapp: Arc<dyn WhatsApp>,
        bus: Arc<EventBus>,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            store,
            whatsapp,
            bus,
            connect_timeout,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The provider, for operations that are its own (groups, profiles):
    /// call it with an instance from [`Self::visible`].
    pub fn whatsapp(&self) -> &dyn WhatsApp {
        self.whatsapp.as_ref()
    }

    /// The instance `name` as seen by `principal`: someone else's instance,
    /// or a sibling of an instance token's own, is indistinguishable from a
    /// missing one.
    pub async fn visible(&self, principal: &Principal, name: &str) -> Result<Instance> {
        let instance = self
            .store
            .find_instance(&principal.account().id, name)
            .await?
            .ok_or(Error::InstanceNotFound)?;
        match principal {
            Principal::Instance { instance_id, .. } if *instance_id != instance.id => {
                Err(Error::InstanceNotFound)
            }
            _ => Ok(instance),
        }
    }

    pub async fn create(&self, principal: &Principal, request: CreateInstance) -> Result<Created> {
        let Principal::Account(account) = principal else {
            return Err(Error::unauthorized(messages::INVALID_TOKEN));
        };
        let name = InstanceName::parse(&request.name)?;
        let token = match request.token.as_deref() {
            Some(raw) => parse_custom_token(raw)?,
            None => Token::generate_instance(),
        };
        let new = NewInstance {
            name,
            token: token.clone(),
            settings: request.settings.apply(&InstanceSettings::default())?,
            webhook: request.webhook,
            webhook_authorization: request.webhook_authorization,
        };
        let instance = self.store.create_instance(account, &new).await?;
        self.whatsapp
            .apply_settings(&instance.id, &instance.settings)
            .await;
        tracing::info!(instance_id = %instance.id, account_id = %account.id, "instance created");
        Ok(Created { instance, token })
    }

    /// Starts linking a phone and waits for the first code, bounded by the
    /// connect deadline.
    pub async fn connect(&self, instance: &Instance, method: LoginMethod) -> Result<LoginCode> {
        self.whatsapp
            .apply_settings(&instance.id, &instance.settings)
            .await;
        let attempt = self.whatsapp.connect(&instance.id, method);
        match tokio::time::timeout(self.connect_timeout, attempt).await {
            Ok(Ok(code)) => {
                if let LoginCode::QrCode { png_data_url, .. } = &code {
                    let event = AppEvent::QrReady {
                        instance_id: instance.id.clone(),
                        png_data_url: png_data_url.clone(),
                    };
                    if let Err(err) = self.bus.publish(&event).await {
                        tracing::warn!(instance_id = %instance.id, error = %err, "could not publish qr_ready");
                    }
                }
                Ok(code)
            }
            Ok(Err(err @ Error::Unavailable(_))) => Err(err),
            Ok(Err(err)) => {
                tracing::warn!(instance_id = %instance.id, error = %err, "connect failed");
                Err(Error::Unavailable(format!(
                    "Could not connect to WhatsApp: {}",
                    err.public_message()
                )))
            }
            Err(_) => Err(Error::Unavailable(format!(
                "Could not connect to WhatsApp: no code within {}s",
                self.connect_timeout.as_secs()
            ))),
        }
    }

    /// The principal's instances with their live state. An instance token
    /// sees only its own instance, whatever the filter.
    pub async fn list(
        &self,
        principal: &Principal,
        names: Option<Vec<String>>,
    ) -> Result<InstanceViews> {
        let account_id = &principal.account().id;
        let instances: Arc<[Instance]> = match principal {
            Principal::Instance { instance_id, .. } => self
                .store
                .find_instance_by_id(instance_id)
                .await?
                .into_iter()
                .collect(),
            Principal::Account(_) => match names {
                Some(names) if names.len() == 1 => {
                    let found = self.store.find_instance(account_id, &names[0]).await?;
                    Arc::new([found.ok_or(Error::InstanceNotFound)?])
                }
                Some(names) => self.store.list_instances(account_id, Some(&names)).await?,
                None => self.store.list_instances(account_id, None).await?,
            },
        };
        let sessions = instances.iter().map(|i| self.live_status(i)).collect();
        Ok(InstanceViews {
            instances,
            sessions,
        })
    }

    /// The provider's live state when it runs a session, else the persisted one.
    pub fn live_status(&self, instance: &Instance) -> SessionStatus {
        self.whatsapp
            .status(&instance.id)
            .unwrap_or_else(|| instance.session.clone())
    }

    /// Sends a message through the instance's session (`NotConnected` when
    /// it is not up), then publishes it as the owner's own message, so the
    /// event log and Chatwoot show it as sent. `echo` is what was sent, as
    /// the owner's message; its id and time are WhatsApp's.
    pub async fn send(
        &self,
        instance: &Instance,
        message: Outgoing,
        echo: InboundMessage,
    ) -> Result<SentMessage> {
        self.send_as(instance, message, echo, None).await
    }

    /// [`Self::send`] under the WhatsApp id `id` when given (idempotent
    /// sends), so a repeat is the same message to WhatsApp.
    pub async fn send_as(
        &self,
        instance: &Instance,
        message: Outgoing,
        echo: InboundMessage,
        id: Option<&str>,
    ) -> Result<SentMessage> {
        let sent = self.whatsapp.send(&instance.id, message, id).await?;
        self.publish_sent(instance, &sent, echo).await;
        Ok(sent)
    }

    /// Forwards the stored `message` to `to` (see [`MessageOps::forward`]),
    /// and publishes `echo` (the forward as the owner's own message).
    ///
    /// [`MessageOps::forward`]: crate::message_ops::MessageOps::forward
    pub async fn forward(
        &self,
        instance: &Instance,
        to: &Jid,
        message: &StoredMessage,
        echo: InboundMessage,
        id: Option<&str>,
    ) -> Result<SentMessage> {
        message.check_forwardable()?;
        let sent = self.whatsapp.forward(&instance.id, to, message, id).await?;
        self.publish_sent(instance, &sent, echo).await;
        Ok(sent)
    }

    /// Publishes `echo`, what was just `sent`, as WhatsApp echoes a message
    /// sent from the phone: the event log, Chatwoot and the message store
    /// hear of it.
    async fn publish_sent(
        &self,
        instance: &Instance,
        sent: &SentMessage,
        mut echo: InboundMessage,
    ) {
        // Like WhatsApp's own echo of it: nothing for an ignored chat.
        if !instance.settings.delivers(&echo.chat) {
            return;
        }
        echo.id = sent.id.clone();
        echo.timestamp = sent.timestamp;
        echo.from_me = true;
        if echo.media_ref.is_none() {
            echo.media_ref = sent.media.clone();
        }
        let event = AppEvent::WhatsApp(WhatsAppEvent {
            instance_id: instance.id.clone(),
            event: Event::Message(Box::new(echo)),
        });
        // The message is out: a subscriber's failure is logged, not returned.
        if let Err(err) = self.bus.publish(&event).await {
            tracing::warn!(instance_id = %instance.id, error = %err, "could not publish a sent message");
        }
    }

    /// Shows "typing..." or "recording..." in `chat` (or stops it).
    pub async fn chat_presence(
        &self,
        instance: &Instance,
        chat: &Jid,
        presence: ChatPresence,
    ) -> Result<()> {
        self.whatsapp
            .chat_presence(&instance.id, chat, presence)
            .await
    }

    /// Whether the instance's WhatsApp session is up right now.
    pub fn is_connected(&self, instance: &Instance) -> bool {
        self.live_status(instance).state == ConnectionState::Connected
    }

    /// The settings of the instance `name` as seen by `principal`.
    pub async fn settings(&self, principal: &Principal, name: &str) -> Result<InstanceSettings> {
        self.visible(principal, name)
            .await
            .map(|instance| instance.settings)
            .map_err(|err| failed(err, messages::FAILED_TO_GET_SETTINGS))
    }

    /// Changes the fields `patch` names (`400` when it names none) and has
    /// the provider apply the result at once.
    pub async fn update_settings(
        &self,
        instance: &Instance,
        patch: &SettingsPatch,
    ) -> Result<InstanceSettings> {
        if patch.is_empty() {
            return Err(Error::bad_request(messages::NO_SETTING_PROVIDED));
        }
        let settings = self
            .store
            .update_settings(&instance.account_id, &instance.id, patch)
            .await
            .map_err(|err| failed(err, messages::FAILED_TO_UPDATE_SETTINGS))?
            .ok_or(Error::InstanceNotFound)?;
        self.whatsapp.apply_settings(&instance.id, &settings).await;
        tracing::info!(instance_id = %instance.id, "settings updated");
        Ok(settings)
    }

    pub async fn logout(&self, instance: &Instance) -> Result<()> {
        self.whatsapp
            .logout(&instance.id)
            .await
            .map_err(|err| Error::internal_with(messages::FAILED_TO_LOGOUT, err))?;
        let status = SessionStatus {
            state: ConnectionState::LoggedOut,
            number_jid: None,
        };
        self.store.set_session_status(&instance.id, &status).await?;
        tracing::info!(instance_id = %instance.id, "instance logged out");
        Ok(())
    }

    /// Removes the instance and all it owns, once every subscriber let go
    /// of it (the session is logged out, the Chatwoot inbox stops calling).
    pub async fn delete(&self, principal: &Principal, name: &str) -> Result<()> {
        let Principal::Account(account) = principal else {
            return Err(Error::unauthorized(messages::INVALID_TOKEN));
        };
        let instance = self.visible(principal, name).await?;
        let instance_id = instance.id.clone();
        self.bus
            .publish(&AppEvent::InstanceDeleting(instance))
            .await?;
        self.store
            .delete_instance(&account.id, &instance_id)
            .await?;
        tracing::info!(%instance_id, "instance deleted");
        Ok(())
    }

    /// Re-opens every session that was linked when the server last stopped,
    /// a page of them at a time and [`RESUMES_AT_ONCE`] of a page at a time
    /// (each in order: its settings, then its session).
    pub async fn resume_paired(&self) -> Result<usize> {
        let mut resumed = 0;
        let mut page = self.store.paired_instances(None).await?;
        while !page.is_empty() {
            resumed += futures_util::stream::iter(&page)
                .map(|instance| self.resume(instance))
                .buffer_unordered(RESUMES_AT_ONCE)
                .filter(|resumed| std::future::ready(*resumed))
                .count()
                .await;
            page = self.store.paired_instances(page.last()).await?;
        }
        Ok(resumed)
    }

    async fn resume(&self, instance: &Instance) -> bool {
        self.whatsapp
            .apply_settings(&instance.id, &instance.settings)
            .await;
        match self.whatsapp.resume(&instance.id, &instance.session).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(instance_id = %instance.id, error = %err, "could not resume session");
                false
            }
        }
    }
}

/// Sessions resumed side by side at start-up. A resume is a few short
/// queries and its event's subscribers: one at a time, a start with 10,000
/// paired instances waited ~3 s on round trips to the database's threads.
const RESUMES_AT_ONCE: usize = 16;

/// An internal failure shown as the route's own text (RyzeAPI's wording).
fn failed(err: Error, public: &str) -> Error {
    match err {
        Error::Internal { cause, .. } => Error::internal_with(public, cause),
        other => other,
    }
}
