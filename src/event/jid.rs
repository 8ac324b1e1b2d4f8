//! WhatsApp addresses (JIDs): `user[_agent][:device]@server`.
//!
//! The forms that arrive: `84933313000@s.whatsapp.net` (a phone number),
//! `…@c.us` (the same, legacy), `…:12@s.whatsapp.net` (one device of it),
//! `…@lid` (a privacy alias that is *not* a phone number), `…@g.us` (a
//! group), `status@broadcast`, `…@broadcast` (broadcast lists),
//! `…@newsletter` (channels). This module tells them apart and extracts the
//! phone number where there is one.

/// What kind of address a JID is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JidKind {
    /// A phone-number user (`@s.whatsapp.net`, `@c.us`, `@hosted`).
    Phone,
    /// A linked-id alias (`@lid`, `@hosted.lid`): no phone number in it.
    Lid,
    /// A group (`@g.us`).
    Group,
    /// Status updates (`status@broadcast`).
    Status,
    /// A broadcast list (`…@broadcast`).
    Broadcast,
    /// A channel (`@newsletter`).
    Newsletter,
    /// Meta AI and other bots (`@bot`).
    Bot,
    /// Anything else.
    Other,
}

/// The kind of `jid`.
pub fn kind(jid: &str) -> JidKind {
    let server = jid.rsplit_once('@').map_or("", |(_, s)| s);
    match server {
        "s.whatsapp.net" | "c.us" | "hosted" => JidKind::Phone,
        "lid" | "hosted.lid" => JidKind::Lid,
        "g.us" => JidKind::Group,
        "broadcast" if jid.starts_with("status@") => JidKind::Status,
        "broadcast" => JidKind::Broadcast,
        "newsletter" => JidKind::Newsletter,
        "bot" => JidKind::Bot,
        _ => JidKind::Other,
    }
}

/// The JID without `:device` or `_agent`, with `@c.us` spelled `@s.whatsapp.net`.
pub fn normalize(jid: &str) -> String {
    let jid = jid.trim();
    let Some((user, server)) = jid.rsplit_once('@') else {
        return jid.to_owned();
    };
    let user = user.split(':').next().unwrap_or(user);
    let user = user.split('_').next().unwrap_or(user);
    let server = if server == "c.us" {
        "s.whatsapp.net"
    } else {
        server
    };
    format!("{user}@{server}")
}

/// The phone number (digits) of a phone-number JID; `None` for any other kind.
pub fn phone(jid: &str) -> Option<String> {
    if kind(jid) != JidKind::Phone {
        return None;
    }
    let normalized = normalize(jid);
    let user = normalized.split('@').next()?;
    (!user.is_empty() && user.chars().all(|c| c.is_ascii_digit())).then(|| user.to_owned())
}

/// A phone number from a field that may hold a JID or bare digits (`senderPn`, `_chat.phone`).
pub fn phone_from_any(value: &str) -> Option<String> {
    let value = value.trim();
    if value.contains('@') {
        return phone(value);
    }
    let digits: String = value.chars().filter(|c| *c != '+').collect();
    (digits.len() >= 5 && digits.chars().all(|c| c.is_ascii_digit())).then_some(digits)
}

/// The part of an address that names whom a message went to, for
/// matching a send with its echo: the user of a JID (no device, agent or
/// server), or the digits of a bare number. `84933313000`,
/// `+84933313000`, `84933313000@c.us` and `84933313000:3@s.whatsapp.net`
/// give the same key; a group keeps its own id.
pub fn address_key(value: &str) -> String {
    let value = value.trim();
    if value.contains('@') {
        let normalized = normalize(value);
        return normalized.split('@').next().unwrap_or_default().to_owned();
    }
    value.chars().filter(|c| *c != '+' && *c != ' ').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(kind("84933313000@s.whatsapp.net"), JidKind::Phone);
        assert_eq!(kind("84933313000@c.us"), JidKind::Phone);
        assert_eq!(kind("123456789012345@lid"), JidKind::Lid);
        assert_eq!(kind("120363025246125486@g.us"), JidKind::Group);
        assert_eq!(kind("status@broadcast"), JidKind::Status);
        assert_eq!(kind("1234@broadcast"), JidKind::Broadcast);
        assert_eq!(kind("1203@newsletter"), JidKind::Newsletter);
        assert_eq!(kind("nonsense"), JidKind::Other);
    }

    #[test]
    fn address_keys_match_a_number_with_its_jids() {
        let key = address_key("84933313000");
        for form in [
            "+84933313000",
            "84933313000@c.us",
            "84933313000@s.whatsapp.net",
            "84933313000:3@s.whatsapp.net",
            " 84933313000_1@s.whatsapp.net ",
        ] {
            assert_eq!(address_key(form), key, "{form}");
        }
        assert_eq!(address_key("120363025246125486@g.us"), "120363025246125486");
        assert_ne!(address_key("84933313001@c.us"), key);
    }

    #[test]
    fn normalizing_drops_device_and_agent() {
        assert_eq!(
            normalize("84933313000:12@s.whatsapp.net"),
            "84933313000@s.whatsapp.net"
        );
        assert_eq!(normalize("84933313000@c.us"), "84933313000@s.whatsapp.net");
        assert_eq!(
            normalize("84933313000_1:3@c.us"),
            "84933313000@s.whatsapp.net"
        );
    }

    #[test]
    fn phones() {
        assert_eq!(phone("84933313000:12@c.us").as_deref(), Some("84933313000"));
        assert_eq!(phone("123@lid"), None);
        assert_eq!(phone("120363025246125486@g.us"), None);
        assert_eq!(
            phone_from_any("+84933313000").as_deref(),
            Some("84933313000")
        );
        assert_eq!(
            phone_from_any("84933313000@s.whatsapp.net").as_deref(),
            Some("84933313000")
        );
        assert_eq!(phone_from_any("abc"), None);
    }
}
