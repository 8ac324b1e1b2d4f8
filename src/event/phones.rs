//! Phone numbers for `@lid` aliases: the one place an event gets the
//! numbers that its body did not carry but that `contacts.*` events taught
//! (the daemon looks them up in its store; tests pass a map).

use super::jid::{self, JidKind};
use super::{Event, EventKind};

impl Event {
    /// Fills in the phone numbers of `@lid` senders, presences and callers
    /// that the body did not carry, from `phone_of` (a JID's learned number).
    /// A message sender with a number found is then answered at that number.
    pub fn learn_phones<E>(
        &mut self,
        mut phone_of: impl FnMut(&str) -> Result<Option<String>, E>,
    ) -> Result<(), E> {
        let mut lookup = |jid: &str, phone: &mut Option<String>| -> Result<bool, E> {
            if phone.is_some() || jid::kind(jid) != JidKind::Lid {
                return Ok(false);
            }
            *phone = phone_of(jid)?;
            Ok(phone.is_some())
        };
        match &mut self.kind {
            EventKind::Message(m) => {
                if lookup(&m.sender_jid, &mut m.sender_phone)?
                    && let Some(phone) = &m.sender_phone
                {
                    m.sender = phone.clone();
                }
            }
            EventKind::Presence(p) => {
                lookup(&p.participant, &mut p.phone)?;
            }
            EventKind::Call(c) => {
                lookup(&c.from, &mut c.phone)?;
            }
            _ => {}
        }
        Ok(())
    }
}
