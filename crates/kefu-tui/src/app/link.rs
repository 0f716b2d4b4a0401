//! `/link URL LABEL` in the compose box: a link card for the visitor.

use kefu_protocol::trail::LinkCard;

/// What a draft says about link cards.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum LinkCommand {
    /// Not `/link`: a plain reply.
    None,
    /// `/link URL LABEL`: a card the visitor's chat shows as a button.
    Card(LinkCard),
    /// `/link` without an http(s) address and a label.
    Usage,
}

pub(super) fn link_command(draft: &str) -> LinkCommand {
    let Some(rest) = draft.trim().strip_prefix("/link") else {
        return LinkCommand::None;
    };
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return LinkCommand::None; // e.g. a canned `/links`
    }
    let Some((url, label)) = rest.trim().split_once(char::is_whitespace) else {
        return LinkCommand::Usage;
    };
    let web = url.starts_with("https://") || url.starts_with("http://");
    let label = label.trim();
    if !web || label.is_empty() {
        return LinkCommand::Usage;
    }
    LinkCommand::Card(LinkCard {
        url: url.to_owned(),
        label: label.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn link_commands_need_a_web_address_and_a_label() {
        assert_eq!(
            link_command("/link https://shop.example/checkout  Pay here "),
            LinkCommand::Card(LinkCard {
                url: "https://shop.example/checkout".into(),
                label: "Pay here".into(),
            })
        );
        for usage in [
            "/link",
            "/link https://shop.example/",
            "/link ftp://x label",
        ] {
            assert_eq!(link_command(usage), LinkCommand::Usage, "{usage}");
        }
        for plain in ["hello", "/links", "see /link"] {
            assert_eq!(link_command(plain), LinkCommand::None, "{plain}");
        }
    }
}
