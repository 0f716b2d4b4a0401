//! Remote assistance from the terminal: Alt-s asks the target
//! conversation's visitor to share their screen; the relay answers with a
//! one-time link to its assist page, which the terminal cannot show, so
//! the link is shown on the status line (the terminal loop makes it an
//! OSC 8 hyperlink where it is drawn, see `hyperlink`) and handed to the
//! desktop's opener.

use kefu_protocol::agent::AgentRequest;
use kefu_protocol::call::CallLink;

use super::{App, Effect};

impl App {
    pub(super) fn ask_screen(&mut self) {
        let Some(id) = self.actionable_target("ask for the screen") else {
            return;
        };
        self.flash = Some("asking the visitor to share their screen…".to_owned());
        self.request(AgentRequest::CallInvite {
            conversation_id: id,
        });
    }

    pub(super) fn call_link(&mut self, link: CallLink) {
        let url = match link.url {
            Some(url) => url,
            None => format!("{}{}", self.prefs.relay_page, link.path),
        };
        self.flash = Some(format!("screen share: open once within 2 min: {url}"));
        self.flash_link = Some(url.clone());
        self.effects.push(Effect::OpenLink(url));
    }
}

/// `http(s)://host[:port]` of the relay's pages, from its agent socket's
/// URL (`ws://host:port/ws/agent`).
pub fn relay_page(agent_url: &str) -> String {
    let http = if let Some(rest) = agent_url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        format!(
            "http://{}",
            agent_url.strip_prefix("ws://").unwrap_or(agent_url)
        )
    };
    match http
        .find("://")
        .and_then(|at| http[at + 3..].find('/').map(|slash| at + 3 + slash))
    {
        Some(path) => http[..path].to_owned(),
        None => http,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_pages_are_where_the_agent_socket_is() {
        assert_eq!(
            relay_page("ws://127.0.0.1:8080/ws/agent"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            relay_page("wss://desk.example/ws/agent"),
            "https://desk.example"
        );
        assert_eq!(relay_page("ws://h:1"), "http://h:1");
    }
}
